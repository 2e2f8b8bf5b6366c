import { type SQL, sql } from 'drizzle-orm'
import type { Tx } from '../db/index.js'
import { intArray, rows } from '../db/sql.js'

/** What placing an order takes from the cart: its lines, locked with their products, and then the lines themselves. */

/** A cart line with its product as locked: the latest committed stock, which nobody else can change until commit. */
export interface LockedLine {
  id: number
  productId: number
  quantity: number
  stock: number
  isActive: boolean
  categoryId: number
}

/**
 * Locks the user's cart lines and their products in ONE statement, in ascending product id: concurrent orders lock
 * products in one order (no deadlock), and two placements by one user serialize on the cart lines (the second sees
 * the cart the first emptied). A locked row is returned as last committed, so every shortage is known here, before
 * anything is written. Products take the lock an UPDATE would (NO KEY UPDATE), so carts and orders referencing them
 * (foreign key checks) are not blocked.
 *
 * The caller folds what it needs once into the same statement (a round trip costs more than the statement): `first`,
 * an expression (never null) evaluated once before any row is read or locked, and `columns`, scalar subqueries
 * evaluated once and returned on every line (as `Extra`).
 */
export function lockLines<Extra extends object>(tx: Tx, userId: number, fold: { first: SQL; columns: SQL }): Promise<(LockedLine & Extra)[]> {
  return rows<LockedLine & Extra>(
    tx,
    sql`SELECT c.id, c.product_id AS "productId", c.quantity, p.stock, p.is_active AS "isActive",
               p.category_id AS "categoryId", ${fold.columns}
          FROM cart_items c JOIN products p ON p.id = c.product_id
         WHERE c.user_id = ${userId} AND (SELECT ${fold.first}) IS NOT NULL
         ORDER BY c.product_id
           FOR UPDATE OF c FOR NO KEY UPDATE OF p`,
  )
}

/** Deletes lines locked by lockLines, as a data-modifying statement for the statement that places the order (a CTE). */
export function deleteLines(lines: readonly Pick<LockedLine, 'id'>[]): SQL {
  return sql`DELETE FROM cart_items WHERE id = ANY(${intArray(lines.map((l) => l.id))}::int[])`
}
