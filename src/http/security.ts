import type { FastifyInstance } from 'fastify'
import helmet, { type HelmetOptions } from 'helmet'
import cors from '@fastify/cors'
import type { Config } from '../config/index.js'
import { ApiError } from './errors.js'

/** The interactive reference loads its own scripts, styles and inline-styled widgets; nothing else needs them. */
const DOCS_PREFIX = '/docs'

/**
 * helmet's headers for a policy, computed once at start: they depend on the policy alone, never on the request, and
 * handing them to Fastify as one object costs a fraction of helmet running per request (measured: BENCHMARKS.md).
 */
export function headersOf(options: HelmetOptions): Record<string, string> {
  const headers: Record<string, string> = {}
  const collect = { setHeader: (name: string, value: unknown) => (headers[name.toLowerCase()] = String(value)), removeHeader: () => {} }
  helmet(options)({} as never, collect as never, () => {})
  return headers
}

export const queryTooLong = (limit: number) =>
  new ApiError(414, { detail: `Query string is too long (at most ${limit} bytes).` })

/**
 * Security headers, CORS and the query-string limit. Install before any route so the docs routes can be given their
 * relaxed policy as they are added.
 */
export async function installSecurity(app: FastifyInstance, config: Config): Promise<void> {
  // JSON answers need no content policy beyond "load nothing, frame nowhere".
  const apiHeaders = headersOf({
    contentSecurityPolicy: { useDefaults: false, directives: { defaultSrc: ["'none'"], frameAncestors: ["'none'"] } },
  })
  // helmet's defaults ('self' scripts, inline styles for the widgets, data: images), minus the upgrade to https,
  // which would break the page on a plain-http localhost.
  const docsHeaders = headersOf({ contentSecurityPolicy: { useDefaults: true, directives: { upgradeInsecureRequests: null } } })
  app.addHook('onRoute', (route) => {
    if (route.url === DOCS_PREFIX || route.url.startsWith(`${DOCS_PREFIX}/`)) {
      route.config = { ...(route.config as object), securityHeaders: docsHeaders } as never
    }
  })
  app.addHook('onRequest', (request, reply, done) => {
    const own = (request.routeOptions.config as { securityHeaders?: Record<string, string> } | undefined)?.securityHeaders
    reply.headers(own ?? apiHeaders)
    done()
  })

  if (config.corsOrigins.length) {
    await app.register(cors, {
      origin: config.corsOrigins.includes('*') ? '*' : config.corsOrigins,
      methods: ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE'],
      allowedHeaders: ['authorization', 'content-type', 'idempotency-key', 'x-request-id'],
      exposedHeaders: ['retry-after', 'x-cache', 'x-request-id'],
      maxAge: 600,
    })
  }

  const limit = config.queryLimit
  app.addHook('onRequest', (request, _reply, done) => {
    const url = request.url
    // Only a URL longer than the limit can carry a query string over it: one comparison on the hot path.
    if (url.length > limit) {
      const start = url.indexOf('?')
      if (start >= 0 && url.length - start - 1 > limit) return done(queryTooLong(limit))
    }
    done()
  })
}
