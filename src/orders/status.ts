import { and, eq, sql } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db, Tx } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'
import { type OrderStatus, orderItems, orderStatuses, orderStatusHistory, orders } from '../db/schema.js'
import { conflict, notFound } from '../http/errors.js'
import { refreshProducts } from '../catalogue/products.js'
import { restock } from '../catalogue/stock.js'
import { type StoredNotification, publishNotifications, recordStatusChange } from '../notifications/service.js'
import type { AuthUser } from '../auth/guard.js'
import { type OrderRow, serializeOne, visibleTo } from './reading.js'
import type { OrderOut } from './schemas.js'

/** The only moves an order makes; everything else is a 409. */
const transitions: Record<OrderStatus, readonly OrderStatus[]> = {
  pending: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: [],
  cancelled: [],
}

const illegalTransition = (from: OrderStatus, to: OrderStatus) => conflict(`Cannot change status from ${from} to ${to}.`)

/**
 * Moves an order from `from` to `to` if it is still in `from` (a conditional update, so two concurrent changes
 * cannot both pass), with its history entry and the owner's notification, inside the caller's transaction.
 * Returns null when another change got there first.
 */
async function transition(
  tx: Tx,
  orderId: number,
  from: OrderStatus,
  to: OrderStatus,
): Promise<{ row: OrderRow; notification: StoredNotification } | null> {
  const [row] = await tx
    .update(orders)
    .set({ status: to, updatedAt: sql`now()` })
    .where(and(eq(orders.id, orderId), eq(orders.status, from)))
    .returning()
  if (!row) return null
  await tx.insert(orderStatusHistory).values({ orderId, status: to })
  const notification = await recordStatusChange(tx, { orderId, userId: row.userId, status: to, previousStatus: from })
  return { row, notification }
}

/**
 * Reads the order (as the actor may see it), checks the move is legal and makes it; on losing a race it reads the
 * status again, so the 409 names the status the order really has.
 */
async function changeWithin(
  tx: Tx,
  actor: AuthUser,
  orderId: number,
  to: OrderStatus,
): Promise<{ row: OrderRow; notification: StoredNotification }> {
  // Statuses only move forward, so a lost race can repeat at most as many times as there are statuses.
  for (let attempt = 0; attempt <= orderStatuses.length; attempt++) {
    const [current] = await tx
      .select({ status: orders.status })
      .from(orders)
      .where(and(eq(orders.id, orderId), visibleTo(actor)))
    if (!current) throw notFound()
    if (!transitions[current.status].includes(to)) throw illegalTransition(current.status, to)
    const done = await transition(tx, orderId, current.status, to)
    if (done) return done
  }
  throw conflict('The order is being changed by another request; try again.')
}

async function finish(ctx: { db: Db; pubsub: PubSub }, result: { row: OrderRow; notification: StoredNotification }): Promise<OrderOut> {
  await publishNotifications(ctx, result.row.userId, [result.notification])
  return serializeOne(ctx.db, result.row)
}

/** Cancels a pending order and puts its stock back, atomically, with the catalogue cache invalidated around it. */
export async function cancelOrder(ctx: { db: Db; cache: VersionedCache; pubsub: PubSub }, actor: AuthUser, orderId: number): Promise<OrderOut> {
  const result = await ctx.cache.invalidate((mark) =>
    ctx.db.transaction(async (tx) => {
      const done = await changeWithin(tx, actor, orderId, 'cancelled')
      const lines = await tx
        .select({ productId: orderItems.productId, quantity: orderItems.quantity })
        .from(orderItems)
        .where(eq(orderItems.orderId, orderId))
      await mark(await restock(tx, lines))
      return { ...done, productIds: lines.map((l) => l.productId) }
    }),
  )
  await refreshProducts(ctx, result.productIds)
  return finish(ctx, result)
}

/** Staff moves an order along pending → shipped → delivered; cancelling goes through `cancelOrder` (restock). */
export async function changeStatus(ctx: { db: Db; cache: VersionedCache; pubsub: PubSub }, actor: AuthUser, orderId: number, to: OrderStatus): Promise<OrderOut> {
  if (to === 'cancelled') return cancelOrder(ctx, actor, orderId)
  const result = await ctx.db.transaction((tx) => changeWithin(tx, actor, orderId, to))
  return finish(ctx, result)
}
