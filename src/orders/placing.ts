import { createHash } from 'node:crypto'
import { and, eq, sql } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db, Tx } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'
import { pgErrorCode } from '../db/errors.js'
import { rows, toDate } from '../db/sql.js'
import { type Address, emptyAddress, orders } from '../db/schema.js'
import { conflict, validation } from '../http/errors.js'
import { refreshProducts } from '../catalogue/products.js'
import { type StockLine, saleScopes, sellStock } from '../catalogue/stock.js'
import { type LockedLine, deleteLines, lockLines } from '../cart/checkout.js'
import {
  type InsertedNotification,
  type StoredNotification,
  insertNotification,
  lockUserNotifications,
  publishNotifications,
  storedNotification,
} from '../notifications/service.js'
import { type OrderRow, serializeOne, toOrderOut } from './reading.js'
import type { OrderOut } from './schemas.js'

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255

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
export async function placeOrder(
  ctx: { db: Db; cache: VersionedCache; pubsub: PubSub },
  userId: number, input: PlaceOrderInput): Promise<{ order: OrderOut; replayed: boolean }> {
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
