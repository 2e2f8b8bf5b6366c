import { randomUUID } from 'node:crypto'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyServerOptions } from 'fastify'
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox'
import swagger from '@fastify/swagger'
import swaggerUi from '@fastify/swagger-ui'
import websocket from '@fastify/websocket'
import { Ajv } from 'ajv'
import addFormatsModule from 'ajv-formats'
import FindMyWay, { type HTTPMethod } from 'find-my-way'
import { Registry } from 'prom-client'
import type { DestinationStream } from 'pino'
import type { AppContext } from './context.js'
import { installErrorHandling } from './http/errors.js'
import { type InputError, closeObjects, installJsonParser, nonDigitParams, textErrors } from './http/input.js'
import { logSerializers } from './http/logging.js'
import { installRateLimits } from './http/ratelimit.js'
import { BadRequest } from './http/schemas.js'
import { installSecurity } from './http/security.js'
import { accountGoneAnswer } from './auth/guard.js'
import { rateLimitedAccount } from './auth/credentials.js'
import { authRoutes } from './auth/routes.js'
import { catalogueRoutes } from './catalogue/routes.js'
import { cartRoutes } from './cart/routes.js'
import { ordersRoutes } from './orders/routes.js'
import { notificationsRoutes } from './notifications/routes.js'
import { installRequestMetrics, opsRoutes } from './ops/routes.js'
import { staffStreamRoutes } from './notifications/staff.js'
import { statsRoutes } from './stats/routes.js'
import { CONSOLE_PATH, consoleRoutes } from './admin/console.js'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv

type Validate = ((data: unknown) => boolean) & { errors?: unknown[] | null }

/**
 * Bodies are validated strictly (a string is not a number, null is not ""), while path, query and headers, which
 * are always text on the wire, are coerced to the schema's types. On top of each schema, rules for every route:
 * no string in a body or query string may hold a NUL or a lone surrogate (checked after unknown keys are dropped),
 * and integer path parameters must be written as digits.
 */
function validators() {
  const make = (coerce: boolean) =>
    addFormats(new Ajv({ allErrors: true, removeAdditional: true, useDefaults: true, coerceTypes: coerce ? 'array' : false, strict: false }))
  const body = make(false)
  const text = make(true)
  return ({ schema, httpPart }: { schema: unknown; httpPart?: string }): Validate => {
    const validate = (httpPart === 'body' ? body : text).compile(schema as object)
    const extra: ((data: unknown) => InputError[]) | undefined =
      httpPart === 'body'
        ? textErrors
        : httpPart === 'querystring'
          ? // A query parameter's errors belong to the parameter, not to one of its repeated values.
            (data) => textErrors(data).map((e) => ({ ...e, instancePath: e.instancePath.replace(/^(\/[^/]*).*$/, '$1') }))
          : httpPart === 'params'
            ? (data) => nonDigitParams(schema, data)
            : undefined
    if (!extra) return validate as Validate
    const checked: Validate = (data) => {
      // Digits are checked on the raw text, before ajv coerces " 1" to 1; text after ajv has dropped unknown keys.
      const before = httpPart === 'params' ? extra(data) : []
      const valid = validate(data)
      const problems = httpPart === 'params' ? before : extra(data)
      checked.errors = problems.length ? [...(validate.errors ?? []), ...problems] : validate.errors
      return valid && problems.length === 0
    }
    return checked
  }
}

/** A client's request id is echoed in logs and headers only when it looks like one. */
const REQUEST_ID = /^[\w.:-]{1,128}$/

/** `false` for no logging; a stream (and level) to send the service's log lines somewhere else than stdout. */
export type LogOption = false | { stream: DestinationStream; level?: string }

export async function buildApp(ctx: AppContext, options: { logger?: LogOption } = {}): Promise<FastifyInstance> {
  const logger: FastifyServerOptions['logger'] =
    options.logger === false
      ? false
      : {
          level: options.logger?.level ?? ctx.config.logLevel,
          serializers: logSerializers as never,
          ...(options.logger ? { stream: options.logger.stream } : {}),
        }
  const { trustProxy } = ctx.config
  const app = Fastify({
    logger,
    bodyLimit: ctx.config.bodyLimit,
    requestTimeout: ctx.config.timeouts.request,
    keepAliveTimeout: ctx.config.timeouts.keepAlive,
    connectionTimeout: ctx.config.timeouts.connection,
    // A hop count as proxy-addr counts them: the nearest `n` addresses (the socket's peer first) are proxies.
    trustProxy: typeof trustProxy === 'number' ? (_address: string, hop: number) => hop < trustProxy : trustProxy,
    requestIdHeader: false,
    genReqId: (req) => {
      const given = req.headers['x-request-id']
      return typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID()
    },
    // A URL the router cannot even decode is a client error like any other, in the same shape.
    frameworkErrors: (_error, _request, reply) => {
      void (reply as FastifyReply).code(400).send({ detail: 'Malformed request URL.' })
    },
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 200 },
    schemaController: { compilersFactory: { buildValidator: (() => validators()) as never } },
    // Responses to in-flight requests are allowed to finish on close; idle keep-alive sockets are dropped.
    forceCloseConnections: 'idle',
  }).withTypeProvider<TypeBoxTypeProvider>()

  installErrorHandling(app, (err, request) => accountGoneAnswer(ctx, err, request))
  installJsonParser(app)
  // Before any route and before swagger reads them: the OpenAPI document shows the closed objects that are enforced.
  app.addHook('onRoute', (route) => {
    const schema = route.schema as Record<string, unknown> | undefined
    if (!schema) return
    // A route that reads a body or a query string can refuse it: its document says so, in the shape it is sent.
    if ((schema.body ?? schema.querystring) !== undefined) schema.response = { ...(schema.response as object | undefined), 400: BadRequest }
    for (const part of ['body', 'querystring', 'params', 'response'] as const) {
      if (schema[part] === undefined) continue
      schema[part] =
        part === 'response'
          ? Object.fromEntries(Object.entries(schema[part] as object).map(([status, s]) => [status, closeObjects(s)]))
          : closeObjects(schema[part])
    }
  })
  await installSecurity(app, ctx.config)
  await installRateLimits(app, ctx.config, rateLimitedAccount(ctx))
  // JSON only: a text/plain body is refused with 415 rather than handed to a handler as a string.
  app.removeContentTypeParser('text/plain')
  app.decorateRequest('user', null)
  app.decorate('guards', ctx.guards)
  const registry = new Registry()
  app.decorate('metrics', registry)
  installRequestMetrics(app, ctx.cache, ctx.responses, registry)

  // Once shutdown begins, answers to in-flight requests close their connection: a keep-alive client would otherwise
  // hold the server open until its idle timeout, past the grace period.
  let closing = false
  app.addHook('preClose', async () => {
    closing = true
  })
  app.addHook('onSend', async (request, reply) => {
    reply.header('x-request-id', request.id)
    if (closing) reply.header('connection', 'close')
  })

  // Every route, whatever its method, so an existing path with the wrong method answers 405 rather than 404.
  const known = FindMyWay({ ignoreTrailingSlash: true })
  app.addHook('onRoute', (route) => {
    for (const method of [route.method].flat()) {
      if (method !== 'HEAD' && !known.hasRoute(method as HTTPMethod, route.url)) known.on(method as HTTPMethod, route.url, () => {})
    }
  })
  app.setNotFoundHandler((request, reply) => {
    const path = request.url.split('?')[0] ?? '/'
    const allowed = (['GET', 'POST', 'PUT', 'PATCH', 'DELETE'] as const).filter((m) => known.find(m, path))
    if (allowed.length) {
      return reply
        .code(405)
        .header('allow', allowed.join(', '))
        .send({ detail: `Method "${request.method}" not allowed.` })
    }
    return reply.code(404).send({ detail: 'Not found.' })
  })

  await app.register(swagger, {
    openapi: {
      openapi: '3.0.3',
      info: {
        title: 'Storefront API',
        version: '1.0.0',
        description: 'E-commerce backend: JWT auth, catalogue, cart, orders and real-time notifications.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  })
  await app.register(swaggerUi, { routePrefix: '/docs' })
  await app.register(websocket, {
    options: { maxPayload: 64 * 1024 },
    // A client that misbehaves on its socket (a frame over maxPayload, a bad frame, a dropped connection) is the
    // client's problem: noted at info, without a stack, and the socket dropped. A failure of ours stays an error.
    errorHandler: (err, socket, request) => {
      const code = (err as { code?: string }).code
      if (code?.startsWith('WS_ERR_') || code === 'ECONNRESET' || code === 'EPIPE') {
        request.log.info({ code, reason: err.message }, 'notification socket: client error, connection dropped')
      } else {
        request.log.error({ err }, 'notification socket failed')
      }
      socket.terminate()
    },
    // Open sockets hear that the server is going away (1001), so their clients reconnect, to another instance, at once.
    preClose: async () => {
      for (const client of app.websocketServer.clients) client.close(1001, 'Server shutting down')
      app.websocketServer.close()
    },
  })

  await app.register(opsRoutes, { ctx, registry })
  await app.register(authRoutes, { ctx, prefix: '/api/v1' })
  await app.register(catalogueRoutes, { ctx, prefix: '/api/v1' })
  await app.register(cartRoutes, { ctx, prefix: '/api/v1' })
  await app.register(ordersRoutes, { ctx, prefix: '/api/v1' })
  await app.register(notificationsRoutes, { ctx, prefix: '' })
  await app.register(staffStreamRoutes, { ctx, prefix: '' })
  await app.register(statsRoutes, { ctx, prefix: '/api/v1' })
  await app.register(consoleRoutes, { prefix: CONSOLE_PATH })

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/docs'))
  return app
}
