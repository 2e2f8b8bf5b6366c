import { type SQL, sql } from 'drizzle-orm'
import { products } from '../db/schema.js'
import { intArray, textArray } from '../db/sql.js'
import { type ProductFilters, type ProductListRequest, indexTerm } from './query.js'

/**
 * Product lists as a bounded set of statement shapes. A shape depends on which filters are present, the ordering and
 * the kind of page, never on the values: those are parameters. So each shape is one named (prepared) statement per
 * connection on a real server, parsed once, and its text is built once per process. At most
 * 2 (categories) × 2 × 2 (price bounds) × 3 (stock) × 3 (search) = 72 filter shapes.
 */

const p = sql.placeholder

/** The text the trigram index `products_search_trgm_idx` is built on: a search predicate must be written on it. */
const searchText = sql`(${products.name} || ' ' || ${products.description})`

/** Which filters are present, as part of a statement name (names are at most 63 bytes). */
export function filterShape(f: ProductFilters): string {
  return [
    f.categories.length ? 'c' : '',
    f.minPrice !== null ? 'l' : '',
    f.maxPrice !== null ? 'h' : '',
    f.inStock === null ? '' : f.inStock ? 'i' : 'o',
    f.terms.length === 0 ? '' : f.terms.length === 1 ? 's' : 'S',
  ].join('')
}

/**
 * The filters' predicates, with placeholders for their values. `is_active` and the stock tests stay literal, so the
 * planner matches them to the partial indexes' WHERE clauses whatever the values. Categories are one array (`= ANY`),
 * so any number of them is one shape. One search term goes to the trigram index; the others (any number) filter the
 * rows it found, as one array.
 */
export function filterConditions(f: ProductFilters): SQL[] {
  const conditions: SQL[] = [sql`${products.isActive}`]
  if (f.categories.length) conditions.push(sql`${products.categoryId} = ANY(${p('categories')}::int[])`)
  if (f.minPrice !== null) conditions.push(sql`${products.price} >= ${p('minPrice')}::numeric`)
  if (f.maxPrice !== null) conditions.push(sql`${products.price} <= ${p('maxPrice')}::numeric`)
  if (f.inStock === true) conditions.push(sql`${products.stock} > 0`)
  if (f.inStock === false) conditions.push(sql`${products.stock} = 0`)
  if (f.terms.length) conditions.push(sql`${searchText} ILIKE ${p('term')}`)
  if (f.terms.length > 1) conditions.push(sql`${searchText} ILIKE ALL(${p('otherTerms')}::text[])`)
  return conditions
}

/** `%term%` with LIKE's own characters escaped: a search matches them literally. */
const containing = (term: string) => `%${term.replace(/[\\%_]/g, '\\$&')}%`

/** The values of the placeholders above. */
export function filterValues(f: ProductFilters): Record<string, string> {
  const values: Record<string, string> = {}
  if (f.categories.length) values.categories = intArray(f.categories)
  if (f.minPrice !== null) values.minPrice = f.minPrice
  if (f.maxPrice !== null) values.maxPrice = f.maxPrice
  if (f.terms.length) {
    const term = indexTerm(f.terms)
    values.term = containing(term)
    values.otherTerms = textArray(f.terms.filter((t) => t !== term).map(containing))
  }
  return values
}

/** How a page is read: by page number (OFFSET), or the first keyset page, or from a cursor forward or backward. */
export type PageMode = 'page' | 'start' | 'after' | 'before'

export function pageMode(request: ProductListRequest): PageMode {
  const { cursor } = request
  if (cursor === null) return 'page'
  if (cursor === 'start') return 'start'
  return cursor.backward ? 'before' : 'after'
}
