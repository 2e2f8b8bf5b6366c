import { and, asc, count, eq, gte, lte, sql, type SQL } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { LOW_STOCK_MAX, type OrderStatus, categories, orderStatuses, orders, products } from '../db/schema.js'
import { productColumns, serializeProduct } from '../catalogue/products.js'
import type { ProductOut } from '../catalogue/schemas.js'

export interface OrderStats {
  since: string
  placed: number
  /** Sum of the totals of the orders placed in the window, cancelled ones excepted. */
  revenue: string
  by_status: Record<OrderStatus, number>
  /** Every pending order, whenever placed: what is waiting to ship. */
  awaiting_shipment: number
}

/**
 * Orders placed since `since`, by their current status: one index-only range scan of orders_created_idx over the
 * window (its cost follows the window's orders, not the table's), and the pending count from orders_status_idx.
 */
export async function orderStats(db: Queryable, since: Date): Promise<OrderStats> {
  const byStatus = Object.fromEntries(
    orderStatuses.map((status) => [status, sql<number>`(count(*) FILTER (WHERE ${orders.status} = ${status}))::int`]),
  ) as Record<OrderStatus, SQL<number>>
  const [[window], [pending]] = await Promise.all([
    db
      .select({
        ...byStatus,
        placed: sql<number>`count(*)::int`,
        revenue: sql<string>`coalesce(sum(${orders.totalPrice}) FILTER (WHERE ${orders.status} <> 'cancelled'), 0)::numeric(14, 2)::text`,
      })
      .from(orders)
      .where(gte(orders.createdAt, since)),
    db.select({ n: count() }).from(orders).where(eq(orders.status, 'pending')),
  ])
  const { placed, revenue, ...counts } = window!
  return { since: since.toISOString(), placed, revenue, by_status: counts, awaiting_shipment: pending?.n ?? 0 }
}

export interface StockStats {
  threshold: number
  sold_out: number
  low_stock: number
  products: ProductOut[]
}

/**
 * Live products with at most `threshold` units: how many are sold out, how many low, and the `limit` lowest first.
 * Both statements read a range of products_low_stock_idx, whose predicate the literal bound below lets the planner
 * prove; its size is the number of nearly sold-out products, not the catalogue's.
 */
export async function stockStats(db: Queryable, threshold: number, limit: number): Promise<StockStats> {
  const low = and(
    sql`${products.isActive}`,
    sql`${products.stock} <= ${sql.raw(String(LOW_STOCK_MAX))}`,
    lte(products.stock, threshold),
  )
  const [[counts], rows] = await Promise.all([
    db
      .select({
        soldOut: sql<number>`(count(*) FILTER (WHERE ${products.stock} = 0))::int`,
        lowStock: sql<number>`(count(*) FILTER (WHERE ${products.stock} > 0))::int`,
      })
      .from(products)
      .where(low),
    db
      .select(productColumns)
      .from(products)
      .innerJoin(categories, eq(categories.id, products.categoryId))
      .where(low)
      .orderBy(asc(products.stock), asc(products.id))
      .limit(limit),
  ])
  return { threshold, sold_out: counts?.soldOut ?? 0, low_stock: counts?.lowStock ?? 0, products: rows.map(serializeProduct) }
}
