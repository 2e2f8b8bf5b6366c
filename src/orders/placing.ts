import { createHash } from 'node:crypto'
import { eq } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'
import { pgErrorCode } from '../db/errors.js'
import { preparedRows } from '../db/prepared.js'
import { intArray, toDate } from '../db/sql.js'
import { type Address, orders } from '../db/schema.js'
import { conflict, validation } from '../http/errors.js'
import { type SalePrediction, type StockedLine, predictSale, saleScopes } from '../catalogue/stock.js'
import { lastSeenCart, rememberCart } from '../cart/checkout.js'
import { type InsertedNotification, messageTemplate, publishNotifications, storedNotification } from '../notifications/service.js'
import { serializeOne, toOrderOut } from './reading.js'
import type { OrderOut } from './schemas.js'

export const MAX_IDEMPOTENCY_KEY_LENGTH = 255

export interface PlaceOrderInput {
  /** From the body; absent means the profile's address at the time of ordering. */
  shippingAddress?: Address | undefined
  idempotencyKey?: string | undefined
}

/**
 * What an Idempotency-Key promises to repeat: the cart's lines (place_order hashes their sorted product ids and
 * quantities as `sha256("1x2,7x1")`, its first 32 hex digits) and the address asked for in the body (null when the
 * profile's is used), hashed here the same way. Stored as `lines.address`; a retry after success finds the cart
 * already emptied and can only be compared on the address.
 */
function addressPrint(address: Address | null): string {
  const normalized = address
    ? [address.line1, address.line2, address.city, address.state, address.postal_code, address.country]
    : null
  return createHash('sha256').update(JSON.stringify(normalized)).digest('hex').slice(0, 32)
}

const keyReused = () => conflict('This Idempotency-Key was already used for a different order request.')

/** A cart line as place_order read it under its lock. */
interface ReadLine {
  product_id: number
  quantity: number
  stock: number
  is_active: boolean
  category_id: number
}

/** What place_order answers (drizzle/0005_place_order.sql). */
type Outcome =
  | { outcome: 'existing'; order_id: number; fingerprint: string | null; lines_print: string | null }
  | { outcome: 'empty' }
  | { outcome: 'short'; lines: ReadLine[] }
  | { outcome: 'mispredicted'; lines: ReadLine[] }
  | {
      outcome: 'placed'
      order: {
        id: number
        user_id: number
        total_price: string
        shipping_address: Address
        created_at: string
        updated_at: string
        idempotency_fingerprint: string | null
      }
      items: OrderOut['items']
      notification: InsertedNotification
    }

/** Every outcome but a wrong prediction, which placeMarked retries. */
type Settled = Exclude<Outcome, { outcome: 'mispredicted' }>

/** The placing statement: one call, one round trip, sent as a named prepared statement. */
const PLACE_ORDER = 'SELECT place_order($1::int, $2::jsonb, $3::varchar, $4::text, $5::int[], $6::int[], $7::text) AS outcome'

/**
 * Each misprediction means the cart or a stock changed between two calls a moment apart; past the first retry every
 * line's category is marked as one where it may sell out, so only the cart changing again and again ends here.
 */
const ATTEMPTS = 4

const stocked = (lines: readonly ReadLine[]): StockedLine[] =>
  lines.map((l) => ({ productId: l.product_id, quantity: l.quantity, stock: l.stock, categoryId: l.category_id }))

/**
 * Calls place_order until it does not find its prediction wrong, each time with the cache scopes of its prediction
 * marked first: the order commits with its statement, so what it makes stale must be marked before it is sent. The
 * first prediction is the cart as this process last answered it; a wrong one is corrected from the lines the
 * database read (and marked as well: marks only ever add).
 */
async function placeMarked(
  db: Db,
  userId: number,
  input: PlaceOrderInput,
  mark: (scopes: readonly string[]) => Promise<void>,
): Promise<Settled> {
  const address = input.shippingAddress ?? null
  let sale: SalePrediction = predictSale(lastSeenCart(userId))
  for (let attempt = 1; ; attempt++) {
    await mark(saleScopes(sale))
    const [row] = await preparedRows<{ outcome: Outcome }>(db, 'place_order', PLACE_ORDER, [
      userId,
      address && JSON.stringify(address),
      input.idempotencyKey ?? null,
      addressPrint(address),
      intArray(sale.products),
      intArray(sale.sellsOutIn),
      messageTemplate('pending'),
    ])
    const result = row!.outcome
    if (result.outcome !== 'mispredicted') return result
    if (attempt === ATTEMPTS) throw conflict('Your cart kept changing while the order was being placed; try again.')
    sale = predictSale(stocked(result.lines), attempt > 1)
  }
}

/**
 * Places the user's cart as one order, all or nothing. Returns `replayed` when an Idempotency-Key matched an order
 * placed before (nothing was changed then).
 */
export async function placeOrder(
  ctx: { db: Db; cache: VersionedCache; pubsub: PubSub },
  userId: number,
  input: PlaceOrderInput,
): Promise<{ order: OrderOut; replayed: boolean }> {
  let result: Settled
  try {
    result = await ctx.cache.invalidate(
      (mark) => placeMarked(ctx.db, userId, input, mark),
      // After commit: the notification pushed. The products' entries, invalidated by the bump, are not refilled here
      // but by the next read that wants them (one batched query): on the order path that query and its fill were a
      // quarter of an order's cost, and many products sold are not read again before they sell again.
      async (settled) => {
        if (settled.outcome === 'placed') await publishNotifications(ctx, userId, [storedNotification(settled.notification)])
      },
    )
  } catch (err) {
    // numeric(12,2) overflow: a total of ten billion or more.
    if (pgErrorCode(err) === '22003') throw validation({ non_field_errors: ['The order total is too large.'] })
    throw err
  }
  switch (result.outcome) {
    case 'existing': {
      // The same request again: same address, and the same lines unless the cart was emptied (by that order).
      const [linesPart, addressPart] = (result.fingerprint ?? '').split('.')
      if (addressPart !== addressPrint(input.shippingAddress ?? null)) throw keyReused()
      if (result.lines_print !== null && linesPart !== result.lines_print) throw keyReused()
      const [row] = await ctx.db.select().from(orders).where(eq(orders.id, result.order_id))
      return { order: await serializeOne(ctx.db, row!), replayed: true }
    }
    case 'empty':
      rememberCart(userId, [])
      throw validation({ non_field_errors: ['Your cart is empty.'] })
    case 'short': {
      rememberCart(userId, stocked(result.lines))
      const short = result.lines.filter((l) => !l.is_active || l.stock < l.quantity)
      throw conflict('Not enough stock.', {
        items: short.map((l) => ({ product_id: l.product_id, requested: l.quantity, available: l.is_active ? l.stock : 0 })),
      })
    }
  }
  rememberCart(userId, [])
  const { order: o, items } = result
  const createdAt = toDate(o.created_at)
  const order = toOrderOut(
    {
      id: o.id,
      userId: o.user_id,
      status: 'pending',
      totalPrice: o.total_price,
      shippingAddress: o.shipping_address,
      idempotencyKey: input.idempotencyKey ?? null,
      idempotencyFingerprint: o.idempotency_fingerprint,
      createdAt,
      updatedAt: toDate(o.updated_at),
    },
    items,
    [{ status: 'pending', at: createdAt.toISOString() }],
  )
  return { order, replayed: false }
}
