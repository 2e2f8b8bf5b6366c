import { and, asc, count, desc, eq, gt, max, not, sql } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { type OrderStatus, notifications, orderStatuses } from '../db/schema.js'
import { rows, toDate } from '../db/sql.js'
import type { PubSub } from '../pubsub/index.js'

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

type NotificationRow = Pick<typeof notifications.$inferSelect, 'id' | 'orderId' | 'status' | 'previousStatus' | 'message' | 'read' | 'createdAt'>

export function serializeNotification(row: NotificationRow): NotificationOut {
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

/** The message a status change is stored with, `%s` standing for the order id (insert_notification formats it). */
export function messageTemplate(status: OrderStatus): string {
  switch (status) {
    case 'pending':
      return 'Order #%s has been placed.'
    case 'shipped':
      return 'Order #%s has shipped.'
    case 'delivered':
      return 'Order #%s has been delivered.'
    case 'cancelled':
      return 'Order #%s has been cancelled.'
  }
}

/** A row insert_notification returns, unparsed: bigints are text from node-postgres (numbers in JSON), timestamps text or a Date. */
export interface InsertedNotification {
  id: string | number
  order_id: number
  status: OrderStatus
  previous_status: OrderStatus | null
  message: string
  read: boolean
  created_at: string | Date
  previous_id: string | number
}

/** A notification as its transaction stored it, with what publishNotifications needs to keep one user's in order. */
export interface StoredNotification {
  notification: NotificationOut
  previousId: number
}

/** What insert_notification returned, as it is answered and pushed. */
export function storedNotification(row: InsertedNotification): StoredNotification {
  const notification = serializeNotification({
    id: Number(row.id),
    orderId: row.order_id,
    status: row.status,
    previousStatus: row.previous_status,
    message: row.message,
    read: row.read,
    createdAt: toDate(row.created_at),
  })
  return { notification, previousId: Number(row.previous_id) }
}

/**
 * Stores the owner's notification; call inside the transaction that changes the status. First the lock that
 * serializes the transactions storing notifications for one user, which every writer of `notifications` takes before
 * its insert (place_order first of all its locks): ids are drawn at insert, so one user's notifications then commit in
 * id order, and "everything above the highest id I have" (a socket's `since`, the catch-up after a Redis outage) never
 * skips one that committed late. Then the insert, in a statement of its own so that its `previous_id` (the user's
 * notification before it, 0 for none), read in the statement's own snapshot, counts every earlier one committed and
 * never the row being inserted. Both are SQL functions (drizzle/0005_place_order.sql), shared with place_order.
 */
export async function recordStatusChange(tx: Queryable, change: StatusChange): Promise<StoredNotification> {
  await tx.execute(sql`SELECT lock_user_notifications(${change.userId}::int)`)
  const [row] = await rows<InsertedNotification>(
    tx,
    sql`SELECT * FROM insert_notification(${change.userId}::int, ${change.orderId}::int, ${change.status},
                                          ${change.previousStatus}, ${messageTemplate(change.status)})`,
  )
  return storedNotification(row!)
}

/**
 * Pushes stored notifications to every instance; call after the transaction commits, never before. Pub/sub never
 * fails: without Redis this instance's sockets get them at once and the others' when it is back. Each message names
 * the user's notification before it, so that a socket sends one user's notifications in id order, without gaps,
 * whichever instance published them and whatever overtook what on the way (NotificationSocket.deliver).
 */
export async function publishNotifications(ctx: { pubsub: PubSub }, userId: number, items: StoredNotification[]): Promise<void> {
  for (const { notification, previousId } of [...items].sort((a, b) => a.notification.id - b.notification.id)) {
    const message: PublishedNotification = { user_id: userId, previous_id: previousId, notification }
    await ctx.pubsub.publish(NOTIFICATIONS_CHANNEL, JSON.stringify(message))
  }
}

/** What travels on NOTIFICATIONS_CHANNEL. */
export interface PublishedNotification {
  user_id: number
  /** The user's notification just before this one (0 for none). */
  previous_id: number
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
  const { user_id: userId, previous_id: previous, notification: n } = (message ?? {}) as Partial<PublishedNotification>
  if (!isId(userId) || !(previous === 0 || isId(previous)) || typeof n !== 'object' || n === null) return null
  const valid =
    isId(n.id) &&
    n.type === 'order.status_changed' &&
    isId(n.order_id) &&
    isStatus(n.status) &&
    (n.previous_status === null || isStatus(n.previous_status)) &&
    typeof n.message === 'string' &&
    typeof n.read === 'boolean' &&
    typeof n.created_at === 'string'
  return valid && previous < n.id ? { user_id: userId, previous_id: previous, notification: n } : null
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

/** The user's highest notification id (0 for none): where a socket connecting without `since` starts. */
export async function latestNotificationId(db: Queryable, userId: number): Promise<number> {
  const [row] = await db.select({ id: max(notifications.id) }).from(notifications).where(eq(notifications.userId, userId))
  return row?.id ?? 0
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
