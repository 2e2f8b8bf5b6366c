import { and, eq, sql } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db, Tx } from '../db/index.js'
import { products } from '../db/schema.js'
import { ApiError, conflict, notFound } from '../http/errors.js'
import { PG_INT_MAX } from '../http/schemas.js'
import { type StockChange, scopes, stockChangeScopes, stockMembershipScopes } from './invalidation.js'
import { findProduct, getProduct, refreshProducts } from './products.js'
import type { ProductOut } from './schemas.js'

/**
 * Stock changes: what a placed order takes (place_order, drizzle/0005_place_order.sql, the one statement that places
 * it), what a cancelled one puts back (restock) and the staff's adjustments (adjustStock). With a product's own create
 * and update, these are the only writers of `products.stock`. An order's decrements are predicted (predictSale) so that
 * the cache scopes they make stale are marked before the statement commits them (VersionedCache.invalidate). After
 * commit, restocks and adjustments refill the products' entries (refreshProducts); an order leaves them to the next
 * read.
 */

/** Units of one product an order holds. */
export interface StockLine {
  productId: number
  quantity: number
}

/** A cart line with its product's stock and category, as last read: what predicting its sale needs. */
export interface StockedLine extends StockLine {
  stock: number
  categoryId: number
}

/**
 * What placing an order is expected to sell: its products, and the categories where one of them may sell out
 * (`place_order` writes nothing when the cart says otherwise, so a prediction is never trusted, only checked).
 */
export interface SalePrediction {
  products: number[]
  sellsOutIn: number[]
}

/**
 * The sale of `lines`: a line sells out when its stock is no more than its quantity. `cautious` counts every line's
 * category as one where it may sell out (marks more, but a stock that moves meanwhile cannot prove it wrong).
 */
export function predictSale(lines: readonly StockedLine[], cautious = false): SalePrediction {
  return {
    products: lines.map((l) => l.productId),
    sellsOutIn: [...new Set(lines.filter((l) => cautious || l.stock <= l.quantity).map((l) => l.categoryId))],
  }
}

/**
 * What a sale makes stale: each product's entry, and the in_stock lists only where a product sells out (every
 * other list stays cached and shows the new stock through the products' own entries).
 */
export function saleScopes(sale: SalePrediction): string[] {
  return [...new Set([...sale.products.map(scopes.product), ...sale.sellsOutIn.flatMap(stockMembershipScopes)])]
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
