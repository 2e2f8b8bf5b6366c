import { EPOCH, type ItemFamily } from '../cache/index.js'
import { type ProductFilters, type Ordering, sortField } from './query.js'

/**
 * Cache scopes of the catalogue. A write marks the scopes it changes through `ctx.cache.invalidate`, before its
 * transaction commits; every cached answer stored under one of them becomes unreadable at once.
 *
 * A product list answer is cached as two parts: WHICH products it holds (ids, count, links: the list entry) and
 * each product's text (one entry per product, shared with the product's detail). A product write invalidates its
 * own entry, and list entries only when it can change which products a list holds or in what order:
 * - `m:{c}` (c a category id, or `all` for lists without a category filter) — every list over c: products enter
 *   or leave c (create, retire, delete, a category change);
 * - `m:{c}:price` — lists over c that filter or order by price, when a product's price changes;
 * - `m:{c}:stock` — lists over c that filter on in_stock, when a product's stock crosses zero;
 * - `m:{c}:text` — lists over c that search or order by name, when a product's name or description changes.
 * A stock change that stays on one side of zero (every order, almost) therefore leaves every list entry alone.
 */
export const scopes = {
  categoryLists: 'categories',
  category: (id: number) => `category:${id}`,
  product: (id: number | '*') => `product:${id}`,
  membership: (category: number | 'all', dimension?: Dimension) =>
    dimension ? `m:${category}:${dimension}` : `m:${category}`,
  /**
   * Every product entry shows its category's name, but a product lookup cannot know the category before reading
   * the database; so product entries also depend on this one scope, which only a category rename (rare) bumps.
   */
  categoryNames: 'category-names',
}

type Dimension = 'price' | 'stock' | 'text'

/** Product entries: `p:{id}`, under the product's scope and the category names. */
export const productFamily: ItemFamily = { key: 'p:', scopes: [scopes.product('*'), scopes.categoryNames] }

/** Scopes a category detail answer is cached under. */
export function categoryDetailScopes(id: number): string[] {
  return [scopes.category(id), scopes.categoryLists]
}

/** Scopes a product detail answer is cached under: the same entry a list shows. */
export function productDetailScopes(id: number): string[] {
  return productFamily.scopes.map((s) => s.replace('*', String(id)))
}

/**
 * What a list entry (its ids and, for page numbers, its count) depends on. A count does not depend on the
 * ordering: pass `ordering` null for the count's scopes.
 */
export function productListScopes(filters: ProductFilters, ordering: Ordering | null): string[] {
  const field = ordering && sortField(ordering)
  const dimensions: Dimension[] = []
  if (filters.minPrice !== null || filters.maxPrice !== null || field === 'price') dimensions.push('price')
  if (filters.inStock !== null) dimensions.push('stock')
  if (filters.terms.length || field === 'name') dimensions.push('text')
  const over = filters.categories.length ? filters.categories : (['all'] as const)
  return over.flatMap((c) => [scopes.membership(c), ...dimensions.map((d) => scopes.membership(c, d))])
}

/** What a list can tell apart about a product; read before and after a write (`RETURNING`). */
export interface ProductFacts {
  categoryId: number
  /** numeric text as PostgreSQL returns it (numeric(12,2): one spelling per value) */
  price: string
  stock: number
  name: string
  description: string
}

/** What a write to one product makes stale; `before` null for a creation, `after` null for a delete or retire. */
export function productChangeScopes(id: number, before: ProductFacts | null, after: ProductFacts | null): string[] {
  const out = new Set([scopes.product(id)])
  const categories = new Set<number | 'all'>(['all'])
  if (before) categories.add(before.categoryId)
  if (after) categories.add(after.categoryId)
  const bump = (dimension?: Dimension) => {
    for (const c of categories) out.add(scopes.membership(c, dimension))
  }
  if (!before || !after) bump()
  else {
    if (before.categoryId !== after.categoryId) {
      out.add(scopes.membership(before.categoryId))
      out.add(scopes.membership(after.categoryId))
    }
    if (before.price !== after.price) bump('price')
    if (before.stock > 0 !== after.stock > 0) bump('stock')
    if (before.name !== after.name || before.description !== after.description) bump('text')
  }
  return [...out]
}

/** A stock change as the writer saw it (from `RETURNING`); `before` is the stock before the change. */
export interface StockChange {
  id: number
  categoryId: number
  before: number
  after: number
}

/** The lists a product entering or leaving stock in `categoryId` changes: that category's in_stock lists and the catalogue's. */
export function stockMembershipScopes(categoryId: number): string[] {
  return [scopes.membership(categoryId, 'stock'), scopes.membership('all', 'stock')]
}

/**
 * What stock changes (an order, a cancellation, an adjustment) make stale: the products' entries, and the
 * in_stock lists of their category only for products whose stock crossed zero. A bare id stands for a change
 * known to stay on one side of zero (its product's entry only).
 */
export function stockChangeScopes(changes: readonly (StockChange | number)[]): string[] {
  const out = new Set<string>()
  for (const change of changes) {
    if (typeof change === 'number') {
      out.add(scopes.product(change))
      continue
    }
    out.add(scopes.product(change.id))
    if (change.before > 0 !== change.after > 0) for (const scope of stockMembershipScopes(change.categoryId)) out.add(scope)
  }
  return [...out]
}

/**
 * What a write to a category makes stale. Product lists hold ids only, and a category with products cannot be
 * deleted, so no list changes; a rename reaches every product entry through the category names.
 */
export function categoryWriteScopes(id: number, renamed: boolean): string[] {
  return [scopes.categoryLists, scopes.category(id), ...(renamed ? [scopes.categoryNames] : [])]
}

/** Everything (bulk loads such as the seed command): the epoch every cached entry depends on. */
export const allCatalogueScopes: readonly string[] = [EPOCH]
