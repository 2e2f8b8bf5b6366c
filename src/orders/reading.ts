import { and, asc, count, desc, eq, inArray, sql, type SQL } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { type OrderStatus, emptyAddress, orderItems, orderStatuses, orderStatusHistory, orders } from '../db/schema.js'
import { fieldError, notFound } from '../http/errors.js'
import type { PageRequest } from '../http/pagination.js'
import { PG_INT_MAX } from '../http/schemas.js'
import type { AuthUser } from '../auth/guard.js'
import type { OrderOut } from './schemas.js'

export type OrderRow = typeof orders.$inferSelect

type ItemOut = OrderOut['items'][number]
type HistoryOut = OrderOut['status_history'][number]

/** The wire shape of one order from its row, items and history (whether read back or just written). */
export function toOrderOut(o: OrderRow, items: ItemOut[], history: HistoryOut[]): OrderOut {
  return {
    id: o.id,
    user_id: o.userId,
    status: o.status,
    total_price: o.totalPrice,
    items,
    shipping_address: { ...emptyAddress, ...o.shippingAddress },
    status_history: history,
    created_at: o.createdAt.toISOString(),
    updated_at: o.updatedAt.toISOString(),
  }
}

/** Orders in the given order, each with its items and history: two batched queries whatever the number of orders. */
export async function serializeOrders(db: Queryable, rows: OrderRow[]): Promise<OrderOut[]> {
  if (!rows.length) return []
  const ids = rows.map((o) => o.id)
  const [items, history] = await Promise.all([
    db
      .select({
        orderId: orderItems.orderId,
        productId: orderItems.productId,
        productName: orderItems.productName,
        unitPrice: sql<string>`${orderItems.unitPrice}::text`,
        quantity: orderItems.quantity,
        subtotal: sql<string>`(${orderItems.unitPrice} * ${orderItems.quantity})::text`,
      })
      .from(orderItems)
      .where(inArray(orderItems.orderId, ids))
      .orderBy(asc(orderItems.orderId), asc(orderItems.productId)),
    db
      .select({ orderId: orderStatusHistory.orderId, status: orderStatusHistory.status, at: orderStatusHistory.at })
      .from(orderStatusHistory)
      .where(inArray(orderStatusHistory.orderId, ids))
      .orderBy(asc(orderStatusHistory.orderId), asc(orderStatusHistory.id)),
  ])
  const group = <T extends { orderId: number }>(list: T[]) => {
    const map = new Map<number, T[]>()
    for (const entry of list) map.set(entry.orderId, [...(map.get(entry.orderId) ?? []), entry])
    return map
  }
  const itemsByOrder = group(items)
  const historyByOrder = group(history)
  return rows.map((o) =>
    toOrderOut(
      o,
      (itemsByOrder.get(o.id) ?? []).map((i) => ({
        product_id: i.productId,
        product_name: i.productName,
        unit_price: i.unitPrice,
        quantity: i.quantity,
        subtotal: i.subtotal,
      })),
      (historyByOrder.get(o.id) ?? []).map((h) => ({ status: h.status, at: h.at.toISOString() })),
    ),
  )
}

export async function serializeOne(db: Queryable, row: OrderRow): Promise<OrderOut> {
  const [order] = await serializeOrders(db, [row])
  return order!
}

/** Who may see an order: its owner, or staff. Anyone else is told it does not exist. */
export function visibleTo(actor: AuthUser): SQL | undefined {
  return actor.isStaff ? undefined : eq(orders.userId, actor.id)
}

export async function getOrder(db: Queryable, actor: AuthUser, orderId: number): Promise<OrderOut> {
  const [row] = await db
    .select()
    .from(orders)
    .where(and(eq(orders.id, orderId), visibleTo(actor)))
  if (!row) throw notFound()
  return serializeOne(db, row)
}

export interface OrderFilters {
  status?: string | undefined
  user?: string | undefined
}

/** Filters as django-filter reads them: a bad value is a 400 keyed by the parameter, never an empty page. */
function filterConditions(actor: AuthUser, filters: OrderFilters): SQL[] {
  const conditions: SQL[] = []
  if (filters.status !== undefined && filters.status !== '') {
    if (!(orderStatuses as readonly string[]).includes(filters.status)) {
      throw fieldError('status', `Select a valid choice. ${filters.status} is not one of the available choices.`)
    }
    conditions.push(eq(orders.status, filters.status as OrderStatus))
  }
  if (!actor.isStaff) {
    conditions.push(eq(orders.userId, actor.id))
  } else if (filters.user !== undefined && filters.user !== '') {
    const user = /^\d{1,10}$/.test(filters.user) ? Number(filters.user) : Number.NaN
    if (!(user >= 1 && user <= PG_INT_MAX)) {
      throw fieldError('user', 'Select a valid choice. That choice is not one of the available choices.')
    }
    conditions.push(eq(orders.userId, user))
  }
  return conditions
}

/** One page, newest first, in four queries whatever the page size: count, page, items, history. */
export async function listOrders(
  db: Queryable,
  actor: AuthUser,
  filters: OrderFilters,
  page: PageRequest,
): Promise<{ count: number; results: OrderOut[] }> {
  const where = and(...filterConditions(actor, filters))
  const [[total], rows] = await Promise.all([
    db.select({ n: count() }).from(orders).where(where),
    db.select().from(orders).where(where).orderBy(desc(orders.id)).limit(page.limit).offset(page.offset),
  ])
  return { count: total?.n ?? 0, results: await serializeOrders(db, rows) }
}
