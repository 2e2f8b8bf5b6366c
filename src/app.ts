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
import type { AppContext } from './context.js'
import { installErrorHandling } from './http/errors.js'
import { installRateLimits } from './http/ratelimit.js'
import { installSecurity } from './http/security.js'
import { accountGoneAnswer, createGuards } from './auth/guard.js'
import { authRoutes } from './auth/routes.js'
import { catalogueRoutes } from './catalogue/routes.js'
import { cartRoutes } from './cart/routes.js'
import { ordersRoutes } from './orders/routes.js'
import { notificationsRoutes } from './notifications/routes.js'
import { opsRoutes } from './ops/routes.js'

const addFormats = addFormatsModule as unknown as (ajv: Ajv) => Ajv

/**
 * Bodies are validated strictly (a string is not a number, null is not ""), while path, query and headers, which
 * are always text on the wire, are coerced to the schema's types.
 */
function validators() {
  const make = (coerce: boolean) =>
    addFormats(new Ajv({ allErrors: true, removeAdditional: true, useDefaults: true, coerceTypes: coerce ? 'array' : false, strict: false }))
  const body = make(false)
  const text = make(true)
  return ({ schema, httpPart }: { schema: unknown; httpPart?: string }) =>
    (httpPart === 'body' ? body : text).compile(schema as object)
}

/** A client's request id is echoed in logs and headers only when it looks like one. */
const REQUEST_ID = /^[\w.:-]{1,128}$/

export async function buildApp(ctx: AppContext, options: { logger?: FastifyServerOptions['logger'] } = {}): Promise<FastifyInstance> {
  const app = Fastify({
    logger: options.logger ?? {
      level: ctx.config.logLevel,
      // Browsers cannot set headers on a WebSocket, so tokens travel in `?token=`: never write them to the log.
      serializers: {
        req: (request: { method: string; url: string; host?: string; ip?: string }) => ({
          method: request.method,
          url: request.url.replace(/([?&]token=)[^&]*/g, '$1[redacted]'),
          host: request.host,
          remoteAddress: request.ip,
        }),
      },
    },
    bodyLimit: ctx.config.bodyLimit,
    trustProxy: ctx.config.trustProxy,
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
  await installSecurity(app, ctx.config)
  await installRateLimits(app, ctx)
  // JSON only: a text/plain body is refused with 415 rather than handed to a handler as a string.
  app.removeContentTypeParser('text/plain')
  app.decorateRequest('user', null)
  app.decorate('guards', createGuards(ctx))
  const registry = new Registry()
  app.decorate('metrics', registry)

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

  app.get('/openapi.json', { schema: { hide: true } }, async () => app.swagger())
  app.get('/', { schema: { hide: true } }, async (_request, reply) => reply.redirect('/docs'))
  return app
}
