import type { FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from 'fastify'
import { pgErrorCode } from '../db/errors.js'

export type FieldErrors = { [field: string]: string[] | FieldErrors }

/** An error whose body is already in the contract's (DRF's) shape. Services throw these; the handler sends them. */
export class ApiError extends Error {
  constructor(
    readonly statusCode: number,
    readonly body: Record<string, unknown>,
    readonly headers: Record<string, string> = {},
  ) {
    super(typeof body.detail === 'string' ? body.detail : `HTTP ${statusCode}`)
  }
}

export const notFound = (detail = 'Not found.') => new ApiError(404, { detail })
export const forbidden = () => new ApiError(403, { detail: 'You do not have permission to perform this action.' })
export const notAuthenticated = () => new ApiError(401, { detail: 'Authentication credentials were not provided.' })
export const tokenNotValid = (detail = 'Given token not valid for any token type') =>
  new ApiError(401, { detail, code: 'token_not_valid' })
export const conflict = (detail: string, extra: Record<string, unknown> = {}) => new ApiError(409, { detail, ...extra })
export const validation = (errors: FieldErrors) => new ApiError(400, errors)
export const fieldError = (field: string, message: string) => validation({ [field]: [message] })

interface AjvError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  message?: string
}

function typeName(value: unknown): string {
  if (Array.isArray(value)) return 'list'
  if (value === null) return 'NoneType'
  return typeof value === 'object' ? 'dict' : typeof value === 'number' ? 'int' : typeof value === 'boolean' ? 'bool' : 'str'
}

/** Django REST Framework's wording for each JSON-schema failure, so DRF clients read our errors unchanged. */
function message(error: AjvError, context: string): string {
  const p = error.params
  const query = context === 'querystring'
  switch (error.keyword) {
    case 'required':
      return 'This field is required.'
    case 'type':
      switch (p.type) {
        case 'integer':
          return query ? 'Enter a whole number.' : 'A valid integer is required.'
        case 'number':
          return query ? 'Enter a number.' : 'A valid number is required.'
        case 'boolean':
          return 'Must be a valid boolean.'
        case 'object':
          return 'Invalid data. Expected a dictionary.'
        case 'array':
          return 'Expected a list of items.'
        default:
          return 'Not a valid string.'
      }
    case 'format':
      return p.format === 'email' ? 'Enter a valid email address.' : `Enter a valid ${String(p.format)}.`
    case 'minLength':
      return p.limit === 1 ? 'This field may not be blank.' : `Ensure this field has at least ${String(p.limit)} characters.`
    case 'maxLength':
      return `Ensure this field has no more than ${String(p.limit)} characters.`
    case 'minimum':
      return `Ensure this value is greater than or equal to ${String(p.limit)}.`
    case 'maximum':
      return `Ensure this value is less than or equal to ${String(p.limit)}.`
    case 'enum':
    case 'const':
    case 'anyOf':
      return query ? 'Select a valid choice.' : 'Not a valid choice.'
    case 'pattern':
      return 'Enter a valid value.'
    case 'nullCharacter':
    case 'surrogateCharacter':
      return error.message ?? 'Invalid value.'
    default:
      return 'Invalid value.'
  }
}

function insert(target: FieldErrors, path: string[], msg: string): void {
  const [head, ...rest] = path
  const key = head ?? 'non_field_errors'
  if (rest.length === 0) {
    const existing = target[key]
    const list = Array.isArray(existing) ? existing : []
    if (!list.includes(msg)) list.push(msg)
    target[key] = list
    return
  }
  const nested = target[key]
  const child: FieldErrors = nested && !Array.isArray(nested) ? nested : {}
  target[key] = child
  insert(child, rest, msg)
}

export function validationErrors(errors: AjvError[], context: string, body?: unknown): FieldErrors {
  const out: FieldErrors = {}
  for (const error of errors) {
    const path = error.instancePath.split('/').filter(Boolean)
    if (error.keyword === 'required') path.push(String(error.params.missingProperty))
    if (path.length === 0 && error.keyword === 'type') {
      insert(out, [], `Invalid data. Expected a dictionary, but got ${typeName(body)}.`)
      continue
    }
    // anyOf reports each branch too; the anyOf line alone is what a person needs.
    if (errors.some((e) => e.keyword === 'anyOf' && e.instancePath === error.instancePath) && error.keyword !== 'anyOf') {
      continue
    }
    insert(out, path, message(error, context))
  }
  return out
}

/**
 * Socket errors, and the SQLSTATEs of a server that is going away, refusing connections or not answering in time:
 * 57P01-57P03 shutdown and recovery, 08xxx connection failures, 53300 too many connections, 25P03 a session closed
 * for idling in a transaction, 57014 a statement cancelled (statement_timeout).
 */
const DOWN_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH', 'EAI_AGAIN',
  '57P01', '57P02', '57P03', '08000', '08001', '08003', '08004', '08006', '08007', '53300', '25P03', '57014',
])
/**
 * What pg and pg-pool say when a connection is lost or cannot be had: "Connection terminated unexpectedly" (also
 * "... due to connection timeout"), "Client has encountered a connection error and is not queryable" (a statement,
 * ROLLBACK included, on a client whose connection died), "timeout exceeded when trying to connect" (pool
 * exhausted or server unreachable), "Query read timeout" (query_timeout); "no answer within" is our ping's.
 */
const DOWN_MESSAGE = /Connection terminated|connect ECONNREFUSED|not queryable|timeout exceeded when trying to connect|Connection ended unexpectedly|Query read timeout|no answer within/

/**
 * True when the database could not be reached or was lost mid-request. Drivers and drizzle wrap the socket error
 * (`cause`, and AggregateError when several addresses were tried), so the whole chain is searched.
 */
export function isDatabaseDown(err: unknown, depth = 0): boolean {
  if (!err || typeof err !== 'object' || depth > 5) return false
  const e = err as { code?: unknown; message?: unknown; cause?: unknown; errors?: unknown }
  if (typeof e.code === 'string' && DOWN_CODES.has(e.code)) return true
  if (typeof e.message === 'string' && DOWN_MESSAGE.test(e.message)) return true
  if (Array.isArray(e.errors) && e.errors.some((inner) => isDatabaseDown(inner, depth + 1))) return true
  return isDatabaseDown(e.cause, depth + 1)
}

export const serviceUnavailable = () =>
  new ApiError(503, { detail: 'Service temporarily unavailable, try again later.' }, { 'retry-after': '5' })

/** query_canceled: the statement ran past DB_STATEMENT_TIMEOUT_MS (or was cancelled); the server itself is fine. */
const isStatementCancelled = (err: unknown) => pgErrorCode(err) === '57014'

function send(reply: FastifyReply, statusCode: number, body: unknown, headers: Record<string, string> = {}) {
  // Error bodies bypass the route's response schema: they are already in their final shape.
  reply.code(statusCode).headers(headers).type('application/json; charset=utf-8').serializer(JSON.stringify)
  return reply.send(body)
}

/** A slice's own reading of an error (with its side effects), or undefined to leave it to the generic handling. */
export type ErrorTranslator = (err: unknown, request: FastifyRequest) => Promise<ApiError | undefined>

export function installErrorHandling(app: FastifyInstance, translate?: ErrorTranslator): void {
  app.setErrorHandler(async (original: FastifyError | ApiError, request: FastifyRequest, reply: FastifyReply) => {
    // A translator that fails itself (the database gone too) leaves the original error to the generic handling.
    const err = (await translate?.(original, request).catch(() => undefined)) ?? original
    if (err instanceof ApiError) return send(reply, err.statusCode, err.body, err.headers)
    const fe = err as FastifyError & { validationContext?: string }
    if (fe.validation) {
      // A malformed id in the path means no such resource, as in DRF.
      if (fe.validationContext === 'params') return send(reply, 404, { detail: 'Not found.' })
      const context = fe.validationContext ?? 'body'
      const source = context === 'body' ? request.body : undefined
      return send(reply, 400, validationErrors(fe.validation, context, source))
    }
    switch (fe.code) {
      case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      case 'FST_ERR_CTP_INVALID_JSON_BODY':
        return send(reply, 400, { detail: 'JSON parse error.' })
      case 'FST_ERR_CTP_BODY_TOO_LARGE':
        return send(reply, 413, { detail: 'Request body is too large.' })
      case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
        return send(reply, 415, { detail: `Unsupported media type "${request.headers['content-type'] ?? ''}" in request.` })
    }
    if (err instanceof SyntaxError && (err as { statusCode?: number }).statusCode === 400) {
      return send(reply, 400, { detail: 'JSON parse error.' })
    }
    const status = fe.statusCode ?? 500
    if (status === 429) return send(reply, 429, { detail: fe.message }, {})
    if (status >= 400 && status < 500) return send(reply, status, { detail: fe.message })
    if (isDatabaseDown(err) || isStatementCancelled(err)) {
      if (isStatementCancelled(err)) request.log.warn({ err }, 'statement cancelled: it ran past the statement timeout')
      else request.log.error({ err }, 'database unavailable')
      const unavailable = serviceUnavailable()
      return send(reply, unavailable.statusCode, unavailable.body, unavailable.headers)
    }
    request.log.error({ err }, 'unhandled error')
    return send(reply, 500, { detail: 'A server error occurred.' })
  })
}
