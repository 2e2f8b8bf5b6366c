import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { asc, gt, max } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { type OrderStatus, notifications, orderStatuses } from '../db/schema.js'
import { OrderStatusSchema, Timestamp } from '../http/schemas.js'
import { CloseCode } from './protocol.js'
import { type NotificationsContext, serveStream } from './routes.js'
import { type NotificationOut, serializeNotification } from './service.js'
import { type Frame, StaffSocket } from './sockets.js'

export const STAFF_STREAM_PATH = '/ws/staff'

/** What the staff stream pushes: every order's placement and status changes, whoever owns the order. */
export const StaffMessage = Type.Object(
  {
    type: Type.Union([Type.Literal('order.created'), Type.Literal('order.status_changed')]),
    notification: Type.Object({
      id: Type.Integer({ description: 'the notification id: pass the last one seen as `since` when reconnecting' }),
      order_id: Type.Integer(),
      status: OrderStatusSchema,
      // Written out as OpenAPI 3.0 says "nullable": a union with Type.Null() reaches the document as a null "object".
      previous_status: Type.Unsafe<OrderStatus | null>({ type: 'string', enum: [...orderStatuses, null], nullable: true }),
      message: Type.String(),
      created_at: Timestamp,
    }),
  },
  { description: 'A frame of the staff stream (the socket also answers `{"type": "ping"}` with `{"type": "pong"}`).' },
)

/** The customer's read flag is theirs, not the shop's, and the frame's type says what happened: both are left out. */
const staffFrame: Frame = ({ read: _read, type: _type, ...notification }) => ({
  type: notification.previous_status === null ? 'order.created' : 'order.status_changed',
  notification,
})

/** The highest notification id of anyone: where a staff socket without `since` starts. */
async function latestOfAll(db: Queryable): Promise<number> {
  const [row] = await db.select({ id: max(notifications.id) }).from(notifications)
  return row?.id ?? 0
}

/** Every notification after `afterId`, oldest first: the staff replay (primary key order, an index range scan). */
async function allNotificationsAfter(db: Queryable, afterId: number, limit: number): Promise<NotificationOut[]> {
  const rows = await db.select().from(notifications).where(gt(notifications.id, afterId)).orderBy(asc(notifications.id)).limit(limit)
  return rows.map(serializeNotification)
}

const DESCRIPTION = `WebSocket (upgrade this GET), staff only. Authenticate like /ws/notifications (\`?token=<access>\` or
\`Authorization: Bearer\`); without a valid access token the socket is closed with 4401, with a customer's with 4403.
Pushes \`{"type": "order.created"}\` when any order is placed and \`{"type": "order.status_changed"}\` when any order
moves (shipped, delivered, cancelled), on every instance; the frame is documented as the 101 answer. \`?since=<id>\`
first replays every order's notifications with a greater id, oldest first, each once. Only each customer's own
notifications commit in id order, so frames of different customers may arrive out of id order, and a reconnect
with \`since\` can miss an event that committed out of order at that very moment (the overview figures are read anew).
Send \`{"type": "ping"}\` for \`{"type": "pong"}\`. A plain GET answers 426.`

/**
 * The staff stream: the customers' notification channel, delivered to every staff socket. It goes through the same
 * machinery as /ws/notifications (serveStream), so anything that stream learns (a resync after a pub/sub outage, a
 * socket cap) reaches this one with it.
 */
export const staffStreamRoutes: FastifyPluginAsyncTypebox<{ ctx: NotificationsContext }> = async (app, { ctx }) => {
  await serveStream(app, ctx, {
    url: STAFF_STREAM_PATH,
    schema: {
      tags: ['notifications'],
      operationId: 'watchAllOrders',
      summary: 'Every order as it is placed and moves (staff, WebSocket)',
      description: DESCRIPTION,
      response: { 101: StaffMessage },
    },
    gauge: { name: 'websocket_staff_connections', help: 'Authenticated staff stream WebSockets open on this instance' },
    audience: 'everyone',
    refuse: (user) => (user.isStaff ? null : [CloseCode.forbidden, 'You do not have permission to perform this action.']),
    latest: () => latestOfAll(ctx.db),
    backlog: (_user, after, limit) => allNotificationsAfter(ctx.db, after, limit),
    socket: (ws, user, log, lastId, source) => new StaffSocket(ws, user.id, log, lastId, source, staffFrame),
  })
}
