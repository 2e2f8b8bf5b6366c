import { type SQL, and, eq, sql } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db, Tx } from '../db/index.js'
import { products } from '../db/schema.js'
import { intArray } from '../db/sql.js'
import { ApiError, conflict, notFound } from '../http/errors.js'
import { PG_INT_MAX } from '../http/schemas.js'
import { type StockChange, stockChangeScopes } from './invalidation.js'
import { findProduct, getProduct, refreshProducts } from './products.js'
import type { ProductOut } from './schemas.js'

/**
 * Stock changes: what a placed order takes (sellStock, a piece of the one statement that places it), what a
 * cancelled one puts back (restock) and the staff's adjustments (adjustStock). With a product's own create and
 * update, these are the only writers of `products.stock`. The order's pieces say which cache scopes they make stale;
 * the order marks them in its transaction (VersionedCache.invalidate) and refreshes the products' entries after
 * commit (refreshProducts).
 */

/** Units of one product an order holds. */
export interface StockLine {
  productId: number
  quantity: number
}

/** A line as the placing transaction locked its product: the stock and category it read under that lock. */
export interface HeldLine extends StockLine {
  stock: number
  categoryId: number
}

/**
 * What selling `lines` makes stale: each product's entry, and the in_stock lists only where a product sells out
 * (every other list stays cached and shows the new stock through the products' own entries).
 */
export function saleScopes(lines: readonly HeldLine[]): string[] {
  return stockChangeScopes(lines.map((l) => ({ id: l.productId, categoryId: l.categoryId, before: l.stock, after: l.stock - l.quantity })))
}

/**
 * The decrements of an order, as a data-modifying statement for the statement that places it (a CTE). Still
 * conditional, as a belt: the caller holds the rows locked and has checked them. Returns one row per product sold,
 * `product_id, name, price, quantity`: what the order's items snapshot.
 */
export function sellStock(lines: readonly StockLine[]): SQL {
  return sql`UPDATE products p SET stock = p.stock - l.quantity, updated_at = now()
            FROM unnest(${intArray(lines.map((l) => l.productId))}::int[], ${intArray(lines.map((l) => l.quantity))}::int[])
                 AS l(product_id, quantity)
           WHERE p.id = l.product_id AND p.stock >= l.quantity AND p.is_active
          RETURNING p.id AS product_id, p.name, p.price, l.quantity`
}

/**
 * Puts a cancelled order's units back, in ascending product id as placing an order locks them (the two never
 * deadlock). Bounded like a stock adjustment: a stock that cannot take the units back refuses the cancellation (409;
 * the caller's transaction rolls back) rather than overflowing the column. Returns the scopes it made stale: the
 * products' entries, and the in_stock lists where a product left zero.
 */
export async function restock(tx: Tx, lines: readonly StockLine[]): Promise<string[]> {
  const changes: StockChange[] = []
  for (const line of [...lines].sort((a, b) => a.productId - b.productId)) {
    const [row] = await tx
      .update(products)
      .set({ stock: sql`${products.stock} + ${line.quantity}`, updatedAt: sql`now()` })
      .where(and(eq(products.id, line.productId), sql`${products.stock}::bigint + ${line.quantity} <= ${PG_INT_MAX}`))
      .returning({ categoryId: products.categoryId, stock: products.stock })
    if (!row) {
      throw conflict(
        `Cannot cancel: putting ${line.quantity} units back would take the stock of product ${line.productId} past ${PG_INT_MAX}.`,
      )
    }
    changes.push({ id: line.productId, categoryId: row.categoryId, before: row.stock - line.quantity, after: row.stock })
  }
  return stockChangeScopes(changes)
}

/** An atomic stock adjustment: the condition and the change are one statement, so concurrent ones never go below 0. */
export async function adjustStock(ctx: { db: Db; cache: VersionedCache }, id: number, delta: number): Promise<ProductOut> {
  const product = await ctx.cache.invalidate((mark) =>
    ctx.db.transaction(async (tx) => {
      const [row] = await tx
        .update(products)
        .set({ stock: sql`${products.stock} + ${delta}`, updatedAt: sql`now()` })
        .where(
          and(
            eq(products.id, id),
            sql`${products.isActive}`,
            sql`${products.stock}::bigint + ${delta} BETWEEN 0 AND ${PG_INT_MAX}`,
          ),
        )
        .returning({ categoryId: products.categoryId, stock: products.stock })
      if (row) {
        await mark(stockChangeScopes([{ id, categoryId: row.categoryId, before: row.stock - delta, after: row.stock }]))
        return getProduct(tx, id)
      }
      const current = await findProduct(tx, id)
      if (!current) throw notFound()
      if (current.stock + delta < 0) {
        throw conflict(`Not enough stock: ${current.stock} left, cannot remove ${-delta}.`, { stock: current.stock })
      }
      throw new ApiError(400, { delta: [`Ensure the resulting stock is less than or equal to ${PG_INT_MAX}.`] })
    }),
  )
  await refreshProducts(ctx, [id])
  return product
}
