/**
 * What reaches the logs. A failed statement must never write its parameters there: drizzle puts them in its error's
 * message (`Failed query: ...\nparams: ...`, hence the stack too) and in `params`, and PostgreSQL's `detail` holds row
 * values (`Key (lower(email))=(ada@example.com) already exists.`). Emails and password hashes have been seen there.
 */

/** Fields of an error (and of the errors it wraps) that say what went wrong without carrying data. */
const SAFE_FIELDS = ['code', 'statusCode', 'severity', 'constraint', 'table', 'column', 'schema', 'routine', 'errno', 'syscall'] as const
const MAX_CAUSES = 5

function withoutParams(message: string): string {
  const at = message.indexOf('\nparams:')
  return at < 0 ? message : message.slice(0, at)
}

export interface SafeError {
  type: string
  message: string
  stack?: string
  cause?: SafeError
  errors?: SafeError[]
  [field: string]: unknown
}

/** pino's `err` serializer: type, message, stack and the safe fields, following `cause` a few levels. */
export function serializeError(err: unknown, depth = 0): unknown {
  if (typeof err !== 'object' || err === null) return err
  const e = err as Record<string, unknown>
  const rawMessage = typeof e.message === 'string' ? e.message : ''
  const message = withoutParams(rawMessage)
  const type = (e.constructor as { name?: string } | undefined)?.name ?? 'Error'
  const out: SafeError = { type, message }
  if (typeof e.stack === 'string') {
    // The stack starts with "<name>: <message>", parameters included.
    out.stack = rawMessage && e.stack.includes(rawMessage) ? e.stack.replace(rawMessage, message) : e.stack
  }
  for (const field of SAFE_FIELDS) if (e[field] !== undefined) out[field] = e[field]
  if (depth < MAX_CAUSES) {
    if (e.cause !== undefined) out.cause = serializeError(e.cause, depth + 1) as SafeError
    if (Array.isArray(e.errors)) out.errors = e.errors.slice(0, 5).map((inner) => serializeError(inner, depth + 1) as SafeError)
  }
  return out
}

interface LoggedRequest {
  method: string
  url: string
  host?: string
  ip?: string
}

/** Serializers for every logger of the service (Fastify's and the process's). */
export const logSerializers = {
  err: serializeError,
  // Browsers cannot set headers on a WebSocket, so tokens travel in `?token=`: never write them to the log.
  req: (request: LoggedRequest) => ({
    method: request.method,
    url: request.url.replace(/([?&]token=)[^&]*/g, '$1[redacted]'),
    host: request.host,
    remoteAddress: request.ip,
  }),
}
