/**
 * The storage half of the versioned cache: a Redis and an in-process implementation with the same semantics.
 *
 * A "scope" names a set of cached answers (one product, all product lists, ...). Each scope has a generation token
 * and a count of writes in flight. Cached entries are stored under their key plus the tokens of their scopes, so
 * replacing a token makes every entry of that scope unreadable at once, with no key scan.
 */
export interface Lookup {
  value: string | null
  /** The generation stamp to fill under; null while a write to one of the scopes is in flight (do not fill). */
  stamp: string | null
}

export interface CacheBackend {
  readonly kind: 'redis' | 'memory'
  lookup(key: string, scopes: readonly string[]): Promise<Lookup>
  fill(key: string, stamp: string, value: string, ttlSeconds: number): Promise<void>
  /** Marks writes in flight on the scopes: until endWrite, readers bypass the cache for them. */
  beginWrite(scopes: readonly string[]): Promise<void>
  /** Gives the scopes new generations, then clears the in-flight mark: entries filled before are never read again. */
  endWrite(scopes: readonly string[]): Promise<void>
  ping(): Promise<void>
  close(): Promise<void>
}

/** A write in flight that never ends (a crashed process) stops bypassing the cache after this long. */
export const WRITE_MARK_TTL_SECONDS = 60

export function newToken(): string {
  return Math.random().toString(36).slice(2, 10)
}
