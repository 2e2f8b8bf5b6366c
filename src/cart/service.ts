import { and, asc, eq, sql } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { preparedRows } from '../db/prepared.js'
import { rows } from '../db/sql.js'
import { cartItems, products } from '../db/schema.js'
import { fieldError, notFound } from '../http/errors.js'
import { PG_INT_MAX } from '../http/schemas.js'
import type { CartOut } from './schemas.js'
import { rememberCart } from './checkout.js'

const invalidProduct = (productId: number) =>
  fieldError('product_id', `Invalid pk "${productId}" - object does not exist.`)

const notEnoughStock = (stock: number) => fieldError('quantity', `Only ${stock} left in stock.`)

interface CartLineRow {
  id: number
  quantity: number
  productId: number
  name: string
  price: string
  stock: number
  isActive: boolean
  categoryId: number
  subtotal: string
  total: string
}

/** The cart's answer; also remembered for placing it (checkout.ts). */
function toCart(userId: number, lines: CartLineRow[]): CartOut {
  rememberCart(userId, lines)
  return {
    items: lines.map((line) => ({
      id: line.id,
      product: {
        id: line.productId,
        name: line.name,
        price: line.price,
        stock: line.stock,
        // A retired product still sits in carts that held it, but it can no longer be bought.
        in_stock: line.isActive && line.stock > 0,
      },
      quantity: line.quantity,
      subtotal: line.subtotal,
    })),
    item_count: lines.reduce((sum, line) => sum + line.quantity, 0),
    total: lines[0]?.total ?? '0.00',
  }
}

/**
 * The whole cart in one query: lines joined with their products, subtotals and the total computed by PostgreSQL
 * in numeric (exact), the total as a window over the same rows.
 */
export async function getCart(db: Queryable, userId: number): Promise<CartOut> {
  const lines = await db
    .select({
      id: cartItems.id,
      quantity: cartItems.quantity,
      productId: products.id,
      name: products.name,
      price: sql<string>`${products.price}::text`,
      stock: products.stock,
      isActive: products.isActive,
      categoryId: products.categoryId,
      subtotal: sql<string>`(${products.price} * ${cartItems.quantity})::text`,
      total: sql<string>`(sum(${products.price} * ${cartItems.quantity}) over ())::text`,
    })
    .from(cartItems)
    .innerJoin(products, eq(products.id, cartItems.productId))
    .where(eq(cartItems.userId, userId))
    .orderBy(asc(cartItems.id))
  return toCart(userId, lines)
}

async function productAvailability(db: Queryable, productId: number) {
  const [product] = await db
    .select({ stock: products.stock, isActive: products.isActive })
    .from(products)
    .where(eq(products.id, productId))
  return product?.isActive ? product : undefined
}

/** addItem's statement, sent as a named prepared statement (the hot path of every purchase). */
const ADD_TO_CART = `WITH added AS (
    INSERT INTO cart_items (user_id, product_id, quantity)
    SELECT $1::int, p.id, $3::int FROM products p
    WHERE p.id = $2::int AND p.is_active AND p.stock >= $3::int
    ON CONFLICT (user_id, product_id) DO UPDATE SET quantity = cart_items.quantity + EXCLUDED.quantity
    WHERE cart_items.quantity::bigint + EXCLUDED.quantity
          <= (SELECT stock FROM products WHERE id = EXCLUDED.product_id)
    RETURNING id, product_id, quantity
  ), lines AS (
    SELECT id, product_id, quantity FROM cart_items
     WHERE user_id = $1::int AND id NOT IN (SELECT id FROM added)
    UNION ALL
    SELECT id, product_id, quantity FROM added
  )
  SELECT l.id, l.quantity, p.id AS "productId", p.name, p.price::text AS price, p.stock,
         p.is_active AS "isActive", p.category_id AS "categoryId", (p.price * l.quantity)::text AS subtotal,
         (sum(p.price * l.quantity) OVER ())::text AS total, EXISTS (SELECT 1 FROM added) AS written
    FROM lines l JOIN products p ON p.id = l.product_id
   ORDER BY l.id`

/**
 * Adds to the line of that product, creating it if needed, and answers the whole cart, in one statement (a round
 * trip costs more than the statement): the insert happens only if the product is active and has the stock, and
 * the conflict update only if the summed quantity still fits the stock. The cart is read from the statement's
 * snapshot, which does not hold the written line yet: it is taken from RETURNING instead (its old version, on an
 * update, left out). When nothing was written, a second read says why.
 */
export async function addItem(db: Queryable, userId: number, productId: number, quantity: number): Promise<CartOut> {
  if (productId < 1 || productId > PG_INT_MAX) throw invalidProduct(productId)
  const lines = await preparedRows<CartLineRow & { written: boolean }>(db, 'add_to_cart', ADD_TO_CART, [userId, productId, quantity])
  if (lines[0]?.written) return toCart(userId, lines)
  const product = await productAvailability(db, productId)
  if (!product) throw invalidProduct(productId)
  throw notEnoughStock(product.stock)
}

/** Sets the quantity of one of the user's lines, if the product has that much in stock; someone else's line is 404. */
export async function setItemQuantity(db: Queryable, userId: number, itemId: number, quantity: number): Promise<void> {
  const updated = await rows<{ id: number }>(
    db,
    sql`UPDATE cart_items ci SET quantity = ${quantity}::int
        FROM products p
        WHERE ci.id = ${itemId}::int AND ci.user_id = ${userId}::int
          AND p.id = ci.product_id AND p.is_active AND p.stock >= ${quantity}::int
        RETURNING ci.id`,
  )
  if (updated.length) return
  const [line] = await db
    .select({ productId: cartItems.productId })
    .from(cartItems)
    .where(and(eq(cartItems.id, itemId), eq(cartItems.userId, userId)))
  if (!line) throw notFound()
  const product = await productAvailability(db, line.productId)
  if (!product) throw fieldError('quantity', 'This product is no longer available.')
  throw notEnoughStock(product.stock)
}

export async function removeItem(db: Queryable, userId: number, itemId: number): Promise<void> {
  const removed = await db
    .delete(cartItems)
    .where(and(eq(cartItems.id, itemId), eq(cartItems.userId, userId)))
    .returning({ id: cartItems.id })
  if (!removed.length) throw notFound()
}

export async function clearCart(db: Queryable, userId: number): Promise<void> {
  await db.delete(cartItems).where(eq(cartItems.userId, userId))
  rememberCart(userId, [])
}
