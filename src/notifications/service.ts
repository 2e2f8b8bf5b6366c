import { and, asc, count, desc, eq, gt, not } from 'drizzle-orm'
import type { AppContext } from '../context.js'
import type { Queryable } from '../db/index.js'
import { type OrderStatus, notifications, orderStatuses } from '../db/schema.js'

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

/** The message a status change is stored with; exported for writers that insert it in their own statement. */
export function describe(change: StatusChange): string {
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
  // In id order, so a socket usually receives one user's notifications in the order they were stored.
  for (const notification of [...items].sort((a, b) => a.id - b.id)) {
    const message: PublishedNotification = { user_id: userId, notification }
    await ctx.pubsub
      .publish(NOTIFICATIONS_CHANNEL, JSON.stringify(message))
      .catch((err) => ctx.log.warn({ err }, 'notification not published; clients will replay it with since'))
  }
}

/** What travels on NOTIFICATIONS_CHANNEL. */
export interface PublishedNotification {
  user_id: number
  notification: NotificationOut
}

const isId = (value: unknown): value is number => Number.isSafeInteger(value) && (value as number) > 0
const isStatus = (value: unknown): value is OrderStatus => orderStatuses.includes(value as OrderStatus)

/**
 * A channel message checked field by field: anything else (another version of the service sharing the Redis
 * namespace, a stray PUBLISH) is null rather than a crash or a malformed push to clients.
 */
export function parsePublished(raw: string): PublishedNotification | null {
  let message: unknown
  try {
    message = JSON.parse(raw)
  } catch {
    return null
  }
  const { user_id: userId, notification: n } = (message ?? {}) as Partial<PublishedNotification>
  if (!isId(userId) || typeof n !== 'object' || n === null) return null
  const valid =
    isId(n.id) &&
    n.type === 'order.status_changed' &&
    isId(n.order_id) &&
    isStatus(n.status) &&
    (n.previous_status === null || isStatus(n.previous_status)) &&
    typeof n.message === 'string' &&
    typeof n.read === 'boolean' &&
    typeof n.created_at === 'string'
  return valid ? { user_id: userId, notification: n } : null
}

export interface ListOptions {
  unread?: boolean | undefined
  limit: number
  offset: number
}

/** One user's notifications, newest first, and how many there are in all. */
export async function listNotifications(
  db: Queryable,
  userId: number,
  options: ListOptions,
): Promise<{ count: number; results: NotificationOut[] }> {
  const where = and(
    eq(notifications.userId, userId),
    options.unread === undefined ? undefined : options.unread ? not(notifications.read) : eq(notifications.read, true),
  )
  const [total, rows] = await Promise.all([
    db.select({ n: count() }).from(notifications).where(where),
    db.select().from(notifications).where(where).orderBy(desc(notifications.id)).limit(options.limit).offset(options.offset),
  ])
  return { count: total[0]?.n ?? 0, results: rows.map(serializeNotification) }
}

/** Marks one of the user's notifications read; null when it is not theirs (or does not exist). */
export async function markRead(db: Queryable, userId: number, id: number): Promise<NotificationOut | null> {
  const [row] = await db
    .update(notifications)
    .set({ read: true })
    .where(and(eq(notifications.id, id), eq(notifications.userId, userId)))
    .returning()
  return row ? serializeNotification(row) : null
}

export async function markAllRead(db: Queryable, userId: number): Promise<void> {
  await db
    .update(notifications)
    .set({ read: true })
    .where(and(eq(notifications.userId, userId), not(notifications.read)))
}

/** The user's notifications with an id above `afterId`, oldest first: the replay of a reconnecting socket. */
export async function notificationsAfter(db: Queryable, userId: number, afterId: number, limit: number): Promise<NotificationOut[]> {
  const rows = await db
    .select()
    .from(notifications)
    .where(and(eq(notifications.userId, userId), gt(notifications.id, afterId)))
    .orderBy(asc(notifications.id))
    .limit(limit)
  return rows.map(serializeNotification)
}
