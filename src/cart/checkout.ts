import type { StockedLine } from '../catalogue/stock.js'

/**
 * What placing an order needs of the cart before it reaches the database: the cart as this process last answered it
 * (adding to it, reading it), with each product's stock and category then, from which placing predicts the cache scopes
 * it must mark before it commits. Only a guess, which the database checks (place_order): a cart changed through
 * another instance, or a stock moved meanwhile, costs one more round trip, never a stale read.
 */

/** Users whose last cart is kept: beyond that the oldest is forgotten (and predicted empty). */
const REMEMBERED_CARTS = 10_000

const lastSeen = new Map<number, readonly StockedLine[]>()

export function rememberCart(userId: number, lines: readonly StockedLine[]): void {
  lastSeen.delete(userId)
  lastSeen.set(userId, lines)
  if (lastSeen.size > REMEMBERED_CARTS) lastSeen.delete(lastSeen.keys().next().value!)
}

export function lastSeenCart(userId: number): readonly StockedLine[] {
  return lastSeen.get(userId) ?? []
}
