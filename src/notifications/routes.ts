import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { FastifyBaseLogger, FastifyInstance, FastifyRequest } from 'fastify'
import type { WebSocket } from 'ws'
import { Gauge } from 'prom-client'
import type { Config } from '../config/index.js'
import type { Queryable } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'
import { type AuthUser, bearerToken, currentUser } from '../auth/guard.js'
import type { SessionDirectory } from '../auth/sessions.js'
import { buildPage, pageRequest } from '../http/pagination.js'
import { BigIdParams, Detail, PageQuery, Paginated, Timestamp, bearer as security } from '../http/schemas.js'
import { notFound } from '../http/errors.js'
import { CloseCode, NOTIFICATIONS_PATH, type ClientMessage, frameText } from './protocol.js'
import { NotificationSocket, type SocketSource, SocketHub, type StreamSocket } from './sockets.js'
import {
  NOTIFICATIONS_CHANNEL,
  type NotificationOut,
  latestNotificationId,
  listNotifications,
  markAllRead,
  markRead,
  notificationsAfter,
} from './service.js'

const tags = ['notifications']
const unauthorized = { 401: Detail }

const NotificationSchema = Type.Object({
  id: Type.Integer(),
  type: Type.Literal('order.status_changed'),
  order_id: Type.Integer(),
  status: Type.String(),
  previous_status: Type.Union([Type.String(), Type.Null()]),
  message: Type.String(),
  read: Type.Boolean(),
  created_at: Timestamp,
})

const SOCKET_DESCRIPTION = `WebSocket (upgrade this GET). Authenticate with \`?token=<access>\` or \`Authorization: Bearer\`;
without a valid access token the socket is closed with 4401, as it is when the token expires or the session is revoked
(reconnect with a fresh one). Pushes \`{"type": "order.status_changed", "notification": {...}}\`, each notification once.
\`?since=<id>\` first replays your stored notifications with a greater id, oldest first. Send \`{"type": "ping"}\` for
\`{"type": "pong"}\` (sent after the replay). One user holds at most WS_MAX_SOCKETS_PER_USER (default 20) sockets per
server instance: a new one past it closes their oldest with 4429 "Too many sockets for this user" (do not reconnect
that one). 1013 (too slow) and 1011 (server error) mean: reconnect with \`since\`. A plain GET answers 426.`

/** What the notification routes and streams use. */
export interface NotificationsContext {
  db: Queryable
  pubsub: PubSub
  sessions: Pick<SessionDirectory, 'onRevoked'>
  config: Pick<Config, 'wsPingIntervalMs' | 'wsMaxSocketsPerUser' | 'dbPoolSize'>
  log: FastifyBaseLogger
}

export const notificationsRoutes: FastifyPluginAsyncTypebox<{ ctx: NotificationsContext }> = async (app, { ctx }) => {
  app.get(
    '/api/v1/notifications',
    {
      onRequest: app.guards.user,
      schema: {
        tags,
        operationId: 'listNotifications',
        summary: 'Your notifications, newest first',
        security,
        querystring: Type.Object({
          ...PageQuery,
          unread: Type.Optional(Type.Boolean({ description: 'true: only unread; false: only read' })),
        }),
        response: { 200: Paginated(NotificationSchema), ...unauthorized },
      },
    },
    async (request) => {
      const page = pageRequest(request.query)
      const { count, results } = await listNotifications(ctx.db, currentUser(request).id, {
        unread: request.query.unread,
        limit: page.limit,
        offset: page.offset,
      })
      return buildPage(request, page, count, results)
    },
  )

  app.post(
    '/api/v1/notifications/read-all',
    {
      onRequest: app.guards.user,
      schema: { tags, operationId: 'markAllNotificationsRead', summary: 'Mark all your notifications read', security, response: { 204: Type.Null(), ...unauthorized } },
    },
    async (request, reply) => {
      await markAllRead(ctx.db, currentUser(request).id)
      return reply.code(204).send(undefined as never)
    },
  )

  app.post(
    '/api/v1/notifications/:id/read',
    {
      onRequest: app.guards.user,
      schema: {
        tags,
        operationId: 'markNotificationRead',
        summary: 'Mark one of your notifications read',
        security,
        params: BigIdParams,
        response: { 200: NotificationSchema, ...unauthorized, 404: Detail },
      },
    },
    async (request) => {
      const notification = await markRead(ctx.db, currentUser(request).id, request.params.id)
      if (!notification) throw notFound()
      return notification
    },
  )

  await serveStream(app, ctx, {
    url: NOTIFICATIONS_PATH,
    schema: { tags, operationId: 'watchNotifications', summary: 'Live notifications (WebSocket)', description: SOCKET_DESCRIPTION },
    gauge: { name: 'websocket_connections', help: 'Authenticated notification WebSockets open on this instance' },
    latest: (user) => latestNotificationId(ctx.db, user.id),
    backlog: (user, after, limit) => notificationsAfter(ctx.db, user.id, after, limit),
    socket: (ws, user, log, lastId, source) => new NotificationSocket(ws, user.id, log, lastId, source),
  })
}

/** A WebSocket endpoint fed by the notifications channel: /ws/notifications, and the staff stream beside it. */
export interface StreamSpec {
  url: string
  schema: { tags: string[]; operationId: string; summary: string; description: string; response?: Record<number, unknown> }
  gauge: { name: string; help: string }
  /** The highest notification id this user's socket could see now: where a socket without `since` starts. */
  latest(user: AuthUser): Promise<number>
  /** The notifications after `afterId` this user's socket may see, oldest first (`since` replay, catch-ups). */
  backlog(user: AuthUser, afterId: number, limit: number): Promise<NotificationOut[]>
  socket(ws: WebSocket, user: AuthUser, log: FastifyRequest['log'], lastId: number, source: SocketSource): StreamSocket
  /** Who receives a notification: its owner (default), or every socket of the stream. */
  audience?: 'owner' | 'everyone'
  /** A close code and reason for an authenticated user who may not open this stream; null lets them in. */
  refuse?(user: AuthUser): [number, string] | null
}

/** Registers the stream's route and its hub: one channel subscription per instance, revocations, resync, shutdown. */
export async function serveStream(app: FastifyInstance, ctx: NotificationsContext, spec: StreamSpec): Promise<SocketHub> {
  const hub = new SocketHub(ctx.config.wsPingIntervalMs, ctx.log, ctx.config.wsMaxSocketsPerUser, spec.audience)
  new Gauge({
    name: spec.gauge.name,
    help: spec.gauge.help,
    registers: [app.metrics],
    collect() {
      this.set(hub.size)
    },
  })
  // One subscription per instance, whatever the number of sockets.
  const unsubscribe = await ctx.pubsub.subscribe(NOTIFICATIONS_CHANNEL, (raw) => hub.dispatch(raw))
  // Logout, password change, deactivation or "revoke sessions" on any instance: the user's open sockets go too.
  const stopRevocations = ctx.sessions.onRevoked((userId) => hub.closeUser(userId, CloseCode.unauthorized, 'Session revoked'))
  // Pub/sub was down: pushes and revocations from other instances were missed. A quarter of the pool at most.
  const catchUpConcurrency = Math.max(1, Math.floor(ctx.config.dbPoolSize / 4))
  const stopResync = ctx.pubsub.on('resync', () => void hub.resync(catchUpConcurrency))
  app.addHook('onClose', async () => {
    stopResync()
    stopRevocations()
    hub.closeAll(CloseCode.goingAway, 'Server shutting down')
    await unsubscribe().catch(() => {})
  })

  const connect = async (ws: WebSocket, request: FastifyRequest): Promise<void> => {
    const query = (request.query ?? {}) as Record<string, unknown>
    let registered!: (socket: StreamSocket) => void
    // Messages are answered once the socket is authenticated and receives pushes: a pong means "you are subscribed".
    const ready = new Promise<StreamSocket>((resolve) => (registered = resolve))
    ws.on('message', (data, isBinary) => {
      const text = isBinary ? null : frameText(data)
      void ready.then((socket) => {
        socket.alive = true
        socket.whenCaughtUp(() => socket.send(answer(text)))
      })
    })

    const since = query.since === undefined ? undefined : parseId(query.since)
    if (since === null) return ws.close(CloseCode.badRequest, 'since must be a notification id')
    const token = bearerToken(request) || (typeof query.token === 'string' ? query.token : '')
    if (!token) return ws.close(CloseCode.unauthorized, 'Authentication credentials were not provided.')
    let user
    try {
      user = await app.guards.fromToken(token)
    } catch (err) {
      request.log.error({ err }, 'notification socket: authentication failed')
      return ws.close(CloseCode.internalError, 'Try again later')
    }
    if (ws.readyState !== ws.OPEN) return
    if (!user) return ws.close(CloseCode.unauthorized, 'Given token not valid for any token type')
    const refused = spec.refuse?.(user)
    if (refused) return ws.close(...refused)

    let lastId: number
    try {
      // Read before the socket joins the hub: a later catch-up then also covers what commits in between.
      lastId = since ?? (await spec.latest(user))
    } catch (err) {
      request.log.error({ err }, 'notification socket: reading the latest notification failed')
      return ws.close(CloseCode.internalError, 'Try again later')
    }
    if (ws.readyState !== ws.OPEN) return

    const current = spec.socket(ws, user, request.log, lastId, {
      backlog: (after, limit) => spec.backlog(user, after, limit),
      authorized: async () => {
        const now = await app.guards.fromToken(token)
        return now !== null && !spec.refuse?.(now)
      },
    })
    // In the hub before the backlog is read: see NotificationSocket.catchUp.
    hub.add(current)
    ws.once('close', () => {
      hub.remove(current)
      current.dispose()
    })
    registered(current)
    current.expireAt(user.tokenExp)
    if (since !== undefined) void current.catchUp()
  }

  app.route({
    method: 'GET',
    url: spec.url,
    schema: { ...spec.schema, response: { ...spec.schema.response, 426: Detail } },
    handler: async (_request, reply) =>
      reply.code(426).header('upgrade', 'websocket').send({ detail: 'This endpoint is a WebSocket: send an Upgrade request.' }),
    wsHandler: connect,
  })
  return hub
}

function parseId(value: unknown): number | null {
  if (typeof value !== 'string' || !/^\d{1,16}$/.test(value)) return null
  const id = Number(value)
  return Number.isSafeInteger(id) ? id : null
}

/** The reply to a client message: pong to a ping, an error for anything else (never a crash). */
function answer(text: string | null): { type: 'pong' } | { type: 'error'; detail: string } {
  if (text === null) return { type: 'error', detail: 'Messages are JSON text.' }
  let message: Partial<ClientMessage> | null
  try {
    message = JSON.parse(text) as Partial<ClientMessage> | null
  } catch {
    return { type: 'error', detail: 'Messages are JSON text.' }
  }
  if (message?.type === 'ping') return { type: 'pong' }
  return { type: 'error', detail: 'Unknown message type; the only one is "ping".' }
}
