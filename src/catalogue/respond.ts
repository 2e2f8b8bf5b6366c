import type { FastifyReply, FastifyRequest } from 'fastify'
import type { CachedResponse } from '../cache/responses.js'

/** The response headers of a cached catalogue read, for the OpenAPI document. */
export const cachedHeaders = {
  'x-cache': { type: 'string', enum: ['HIT', 'MISS'] },
  etag: {
    type: 'string',
    description: 'Strong validator of the body: send it back in `If-None-Match` to get 304 while it is unchanged',
  },
} as const

/** The conditional request header, for the OpenAPI document: any text is accepted (a malformed one never matches). */
export const conditionalHeaders = {
  type: 'object',
  properties: { 'if-none-match': { type: 'string', description: 'ETags of copies the client holds (`*`: any)' } },
} as const

export const notModifiedResponse = {
  description: 'Not modified: the body would be the copy named in `If-None-Match`',
  type: 'null',
  headers: cachedHeaders,
} as const

/**
 * If-None-Match uses the weak comparison (RFC 9110 13.1.2): `W/"x"` matches `"x"`. `*` matches any current
 * representation, which a 200 answer always has.
 */
export function matchesNoneOf(header: string | undefined, etag: string): boolean {
  if (!header) return false
  if (header.trim() === '*') return true
  const opaque = etag.startsWith('W/') ? etag.slice(2) : etag
  for (const [, tag] of header.matchAll(/(?:W\/)?("[^"]*")/g)) if (tag === opaque) return true
  return false
}

/** A cached answer is finished bytes: sent as they are, or as 304 when the client already holds them. */
export function sendCached(request: FastifyRequest, reply: FastifyReply, read: CachedResponse) {
  reply.header('x-cache', read.hit ? 'HIT' : 'MISS').header('etag', read.etag)
  if (matchesNoneOf(request.headers['if-none-match'], read.etag)) return reply.code(304).send()
  return reply.type('application/json; charset=utf-8').send(read.body)
}
