/**
 * Cache scopes of the catalogue. A write marks the scopes it changes through `ctx.cache.invalidate`, before its
 * transaction commits; every cached answer stored under one of them becomes unreadable at once.
 */
export const scopes = {
  categoryLists: 'categories',
  category: (id: number) => `category:${id}`,
  productLists: 'products',
  /**
   * Product counts are cached apart from the pages, under scopes that stock changes (every order) leave alone unless
   * the count filters on stock: after an order, a page costs its rows query but not a count over a million rows.
   */
  productCounts: 'product-counts',
  productStockCounts: 'product-stock-counts',
  product: (id: number) => `product:${id}`,
  /**
   * Every product detail shows its category's name, but a detail lookup cannot know the category before reading
   * the database; so product details also depend on this one scope, which only a category rename (rare) bumps.
   */
  categoryNames: 'category-names',
}

/**
 * Scopes a category detail answer is cached under. The list scope is included so that bulk changes (the seed's
 * reset) reach every category at once; category writes are rare enough that sharing it costs nothing.
 */
export function categoryDetailScopes(id: number): string[] {
  return [scopes.category(id), scopes.categoryLists]
}

/** Scopes a product detail answer is cached under. */
export function productDetailScopes(id: number): string[] {
  return [scopes.product(id), scopes.categoryNames]
}

/** What a stock change of these products (an order, a cancellation, an adjustment) makes stale. */
export function stockChangeScopes(productIds: readonly number[]): string[] {
  return [scopes.productLists, scopes.productStockCounts, ...productIds.map(scopes.product)]
}

/** What any other write to these products (create, update, retire, delete) makes stale. */
export function productWriteScopes(productIds: readonly number[]): string[] {
  return [...stockChangeScopes(productIds), scopes.productCounts]
}

/** Scopes of a cached product count; every write that changes one also bumps `productLists`, so pages follow. */
export function productCountScopes(filtersOnStock: boolean): string[] {
  return filtersOnStock ? [scopes.productCounts, scopes.productStockCounts] : [scopes.productCounts]
}

/** What a write to a category makes stale; product lists show category names and filter by category. */
export function categoryWriteScopes(id: number, renamed: boolean): string[] {
  return [scopes.categoryLists, scopes.category(id), scopes.productLists, ...(renamed ? [scopes.categoryNames] : [])]
}

/** Everything in the catalogue (bulk loads such as the seed command). */
export const allCatalogueScopes: readonly string[] = [
  scopes.categoryLists,
  scopes.productLists,
  scopes.productCounts,
  scopes.productStockCounts,
  scopes.categoryNames,
]
