import { createHash } from 'node:crypto'
import { and, asc, count, desc, eq, inArray, sql, type SQL } from 'drizzle-orm'
import type { AppContext } from '../context.js'
import type { Queryable, Tx } from '../db/index.js'
import { pgErrorCode } from '../db/errors.js'
import { rows, toDate } from '../db/sql.js'
import { type Address, type OrderStatus, emptyAddress, orderItems, orderStatuses, orderStatusHistory, orders } from '../db/schema.js'
import { conflict, fieldError, notFound, validation } from '../http/errors.js'
import type { PageRequest } from '../http/pagination.js'
import { refreshProducts } from '../catalogue/products.js'
import { type StockLine, restock, saleScopes, sellStock } from '../catalogue/stock.js'
import { type LockedLine, deleteLines, lockLines } from '../cart/checkout.js'
import {
  type InsertedNotification,
  type StoredNotification,
  insertNotification,
  lockUserNotifications,
  publishNotifications,
  recordStatusChange,
  storedNotification,
} from '../notifications/service.js'
import type { AuthUser } from '../auth/guard.js'
import { PG_INT_MAX } from '../http/schemas.js'
import type { OrderOut } from './schemas.js'

type OrderRow = typeof orders.$inferSelect

/** The only moves an order makes; everything else is a 409. */
const transitions: Record<OrderStatus, readonly OrderStatus[]> = {
  pending: ['shipped', 'cancelled'],
  shipped: ['delivered'],
  delivered: [],
  cancelled: [],
}

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255

const illegalTransition = (from: OrderStatus, to: OrderStatus) => conflict(`Cannot change status from ${from} to ${to}.`)

// ---------------------------------------------------------------------------------------------------------------
// Reading

type ItemOut = OrderOut['items'][number]
type HistoryOut = OrderOut['status_history'][number]

/** The wire shape of one order from its row, items and history (whether read back or just written). */
function toOrderOut(o: OrderRow, items: ItemOut[], history: HistoryOut[]): OrderOut {
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

async function serializeOne(db: Queryable, row: OrderRow): Promise<OrderOut> {
  const [order] = await serializeOrders(db, [row])
  return order!
}

/** Who may see an order: its owner, or staff. Anyone else is told it does not exist. */
function visibleTo(actor: AuthUser): SQL | undefined {
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

// ---------------------------------------------------------------------------------------------------------------
// Status changes

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

async function finish(ctx: AppContext, result: { row: OrderRow; notification: StoredNotification }): Promise<OrderOut> {
  await publishNotifications(ctx, result.row.userId, [result.notification])
  return serializeOne(ctx.db, result.row)
}

/** Cancels a pending order and puts its stock back, atomically, with the catalogue cache invalidated around it. */
export async function cancelOrder(ctx: AppContext, actor: AuthUser, orderId: number): Promise<OrderOut> {
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
export async function changeStatus(ctx: AppContext, actor: AuthUser, orderId: number, to: OrderStatus): Promise<OrderOut> {
  if (to === 'cancelled') return cancelOrder(ctx, actor, orderId)
  const result = await ctx.db.transaction((tx) => changeWithin(tx, actor, orderId, to))
  return finish(ctx, result)
}

// ---------------------------------------------------------------------------------------------------------------
// Placing an order

export interface PlaceOrderInput {
  /** From the body; absent means the profile's address at the time of ordering. */
  shippingAddress?: Address | undefined
  idempotencyKey?: string | undefined
}

const sha256 = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 32)

/**
 * What an Idempotency-Key promises to repeat: the cart's lines (sorted product ids and quantities) and the
 * address asked for in the body (null when the profile's is used), hashed separately because a retry after
 * success finds the cart already emptied and can only be compared on the address.
 */
function fingerprint(lines: readonly StockLine[], address: Address | null): { lines: string; address: string } {
  const normalized = address
    ? [address.line1, address.line2, address.city, address.state, address.postal_code, address.country]
    : null
  return {
    lines: sha256([...lines].sort((a, b) => a.productId - b.productId).map((l) => `${l.productId}x${l.quantity}`).join(',')),
    address: sha256(JSON.stringify(normalized)),
  }
}

const keyReused = () => conflict('This Idempotency-Key was already used for a different order request.')

/** The order a key already placed, if the request is the same one again; a different request with it is a 409. */
function replayOf(existing: OrderRow, lines: readonly StockLine[], address: Address | null): OrderRow {
  const now = fingerprint(lines, address)
  const [linesPart, addressPart] = (existing.idempotencyFingerprint ?? '').split('.')
  if (addressPart !== now.address) throw keyReused()
  if (lines.length && linesPart !== now.lines) throw keyReused()
  return existing
}

/** One row per item of the order just written, each with the order's and the notification's columns. */
interface Written extends InsertedNotification {
  orderId: number
  userId: number
  totalPrice: string
  shippingAddress: Address
  createdAt: string | Date
  updatedAt: string | Date
  productId: number
  productName: string
  unitPrice: string
  subtotal: string
  quantity: number
}

/**
 * Everything an order writes, as ONE statement (each round trip costs more than the statement), composed from the
 * pieces of the features that own the other tables: the catalogue's decrements (`sold`), the order with its
 * price/name snapshots, address snapshot and total, its first history entry, the owner's notification (`noted`, the
 * notifications' insert) and the emptied cart (the cart's delete). Returns one row per item with what the answer
 * needs, so nothing is read back.
 */
async function writeOrder(
  tx: Tx,
  userId: number,
  orderId: number,
  lines: LockedLine[],
  requestedAddress: Address | null,
  idempotency: { key: string | null; fingerprint: string | null },
): Promise<Written[]> {
  return rows<Written>(
    tx,
    sql`WITH sold AS (
          ${sellStock(lines)}
        ), placed AS (
          INSERT INTO orders (id, user_id, status, total_price, shipping_address, idempotency_key, idempotency_fingerprint)
          VALUES (${orderId}, ${userId}, 'pending', (SELECT sum(price * quantity) FROM sold),
                  COALESCE(${requestedAddress && JSON.stringify(requestedAddress)}::jsonb,
                           ${JSON.stringify(emptyAddress)}::jsonb || (SELECT address FROM users WHERE id = ${userId}),
                           ${JSON.stringify(emptyAddress)}::jsonb),
                  ${idempotency.key}, ${idempotency.fingerprint})
          RETURNING id, user_id, total_price, shipping_address, created_at, updated_at
        ), items AS (
          INSERT INTO order_items (order_id, product_id, product_name, unit_price, quantity)
          SELECT placed.id, sold.product_id, sold.name, sold.price, sold.quantity FROM placed, sold
          RETURNING product_id, product_name, unit_price, quantity
        ), history AS (
          INSERT INTO order_status_history (order_id, status, at) SELECT id, 'pending', created_at FROM placed
        ), noted AS (
          ${insertNotification({ orderId, userId, status: 'pending', previousStatus: null })}
        ), emptied AS (
          ${deleteLines(lines)}
        )
        SELECT placed.id AS "orderId", placed.user_id AS "userId", placed.total_price::text AS "totalPrice",
               placed.shipping_address AS "shippingAddress", placed.created_at AS "createdAt",
               placed.updated_at AS "updatedAt", items.product_id AS "productId", items.product_name AS "productName",
               items.unit_price::text AS "unitPrice", (items.unit_price * items.quantity)::text AS subtotal,
               items.quantity, noted.*
          FROM placed, noted, items
         ORDER BY items.product_id`,
  )
}

interface Placed {
  order: OrderOut
  notification: StoredNotification | null
  productIds: number[]
}

async function placeWithin(tx: Tx, userId: number, input: PlaceOrderInput, mark: (scopes: readonly string[]) => Promise<void>): Promise<Placed> {
  const key = input.idempotencyKey
  const requestedAddress = input.shippingAddress ?? null
  let existing: OrderRow | undefined
  if (key !== undefined) {
    // Two requests with one key queue here; the second then finds the first's order (READ COMMITTED re-reads:
    // which is why this is a statement of its own, after the lock, and not part of the locking one).
    await tx.execute(sql`SELECT pg_advisory_xact_lock(${userId}::int, hashtext(${key}))`)
    ;[existing] = await tx
      .select()
      .from(orders)
      .where(and(eq(orders.userId, userId), eq(orders.idempotencyKey, key)))
  }

  const lines = await lockLines<{ orderId: number }>(tx, userId, {
    // The user's notification lock, before any row lock (a cancellation takes it before restocking: the two never
    // deadlock), and the order's id, which the notification stored with the order names.
    first: lockUserNotifications(userId),
    columns: sql`(SELECT nextval(pg_get_serial_sequence('orders', 'id'))::int) AS "orderId"`,
  })
  const orderId = lines[0]?.orderId ?? 0
  if (existing) {
    const row = replayOf(existing, lines, requestedAddress)
    return { order: await serializeOne(tx, row), notification: null, productIds: [] }
  }
  if (!lines.length) throw validation({ non_field_errors: ['Your cart is empty.'] })

  const short = lines.filter((l) => !l.isActive || l.stock < l.quantity)
  if (short.length) {
    // Nothing was written yet; the transaction is rolled back all the same.
    throw conflict('Not enough stock.', {
      items: short.map((l) => ({ product_id: l.productId, requested: l.quantity, available: l.isActive ? l.stock : 0 })),
    })
  }
  await mark(saleScopes(lines))

  const print = fingerprint(lines, requestedAddress)
  const idempotency = { key: key ?? null, fingerprint: key !== undefined ? `${print.lines}.${print.address}` : null }
  const written = await writeOrder(tx, userId, orderId, lines, requestedAddress, idempotency)
  const first = written[0]
  // The rows are locked and were checked above: a missing decrement would be a bug, never a race.
  if (!first || written.length !== lines.length) throw new Error(`order ${orderId}: ${written.length} of ${lines.length} lines sold`)
  const createdAt = toDate(first.createdAt)
  const row: OrderRow = {
    id: first.orderId,
    userId: first.userId,
    status: 'pending',
    totalPrice: first.totalPrice,
    shippingAddress: first.shippingAddress,
    idempotencyKey: idempotency.key,
    idempotencyFingerprint: idempotency.fingerprint,
    createdAt,
    updatedAt: toDate(first.updatedAt),
  }
  const order = toOrderOut(
    row,
    written.map((w) => ({
      product_id: w.productId,
      product_name: w.productName,
      unit_price: w.unitPrice,
      quantity: w.quantity,
      subtotal: w.subtotal,
    })),
    [{ status: 'pending', at: createdAt.toISOString() }],
  )
  return { order, notification: storedNotification(first), productIds: lines.map((l) => l.productId) }
}

/**
 * Places the user's cart as one order, all or nothing. Returns `replayed` when an Idempotency-Key matched an order
 * placed before (nothing was changed then).
 */
export async function placeOrder(ctx: AppContext, userId: number, input: PlaceOrderInput): Promise<{ order: OrderOut; replayed: boolean }> {
  let placed: Placed
  try {
    placed = await ctx.cache.invalidate((mark) => ctx.db.transaction((tx) => placeWithin(tx, userId, input, mark)))
  } catch (err) {
    // numeric(12,2) overflow: a total of ten billion or more.
    if (pgErrorCode(err) === '22003') throw validation({ non_field_errors: ['The order total is too large.'] })
    throw err
  }
  const { notification } = placed
  await Promise.all([refreshProducts(ctx, placed.productIds), notification && publishNotifications(ctx, userId, [notification])])
  return { order: placed.order, replayed: notification === null }
}
