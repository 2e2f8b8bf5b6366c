/**
 * Cache scopes of the catalogue. A write marks the scopes it changes through `ctx.cache.invalidate`, before its
 * transaction commits; every cached answer stored under one of them becomes unreadable at once.
 */
export const scopes = {
  categoryLists: 'categories',
  category: (id: number) => `category:${id}`,
  productLists: 'products',
  product: (id: number) => `product:${id}`,
}

/** What a stock change of these products (an order, a cancellation, an adjustment) makes stale. */
export function stockChangeScopes(productIds: readonly number[]): string[] {
  return [scopes.productLists, ...productIds.map(scopes.product)]
}
