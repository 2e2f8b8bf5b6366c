import type { AppContext } from '../context.js'
import type { Queryable } from '../db/index.js'
import { type OrderStatus, notifications } from '../db/schema.js'

export interface NotificationOut {
  id: number
  type: 'order.status_changed'
  order_id: number
  status: OrderStatus
  previous_status: OrderStatus | null
  message: string
  read: boolean
  created_at: string
}

export interface StatusChange {
  orderId: number
  userId: number
  status: OrderStatus
  previousStatus: OrderStatus | null
}

/** One channel for every instance; each instance delivers to the sockets it holds. */
export const NOTIFICATIONS_CHANNEL = 'notifications'

export function serializeNotification(row: typeof notifications.$inferSelect): NotificationOut {
  return {
    id: row.id,
    type: 'order.status_changed',
    order_id: row.orderId,
    status: row.status,
    previous_status: row.previousStatus ?? null,
    message: row.message,
    read: row.read,
    created_at: row.createdAt.toISOString(),
  }
}

function describe(change: StatusChange): string {
  const order = `Order #${change.orderId}`
  switch (change.status) {
    case 'pending':
      return `${order} has been placed.`
    case 'shipped':
      return `${order} has shipped.`
    case 'delivered':
      return `${order} has been delivered.`
    case 'cancelled':
      return `${order} has been cancelled.`
  }
}

/** Stores the owner's notification; call inside the transaction that changes the status. */
export async function recordStatusChange(tx: Queryable, change: StatusChange): Promise<NotificationOut> {
  const [row] = await tx
    .insert(notifications)
    .values({
      userId: change.userId,
      orderId: change.orderId,
      status: change.status,
      previousStatus: change.previousStatus,
      message: describe(change),
    })
    .returning()
  return serializeNotification(row!)
}

/**
 * Pushes stored notifications to every instance; call after the transaction commits, never before. A failed
 * publish loses no data: the notification is stored, and a client reconnecting with `since` replays it.
 */
export async function publishNotifications(ctx: AppContext, userId: number, items: NotificationOut[]): Promise<void> {
  for (const notification of items) {
    await ctx.pubsub
      .publish(NOTIFICATIONS_CHANNEL, JSON.stringify({ user_id: userId, notification }))
      .catch((err) => ctx.log.warn({ err }, 'notification not published; clients will replay it with since'))
  }
}
