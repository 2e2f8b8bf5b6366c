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

/**
 * A family of entries, one per id (products): entry `${key}${id}` under `scopes` with every `*` replaced by the id.
 * The backend prepends the epoch scope itself, as `VersionedCache` does for single entries.
 */
export interface ItemFamily {
  key: string
  scopes: readonly string[]
}

/**
 * A list entry holds which items a list answer shows, apart from the items themselves:
 * `ids` (comma-separated) `\n` `head` `\n` `tail`; the answer is head + the items joined by commas + tail.
 */
export interface ListLookup {
  /** Every entry was found: the assembled answer. */
  body: string | null
  /** With `body`: the ids of the items it shows (what else it depends on). */
  ids: string[] | null
  /** The list entry, when found but some item was not (or a write to one was in flight). */
  list: { ids: string[]; head: string; tail: string; items: Lookup[] } | null
  /** The list entry's fill stamp when it was not found (null: a write is in flight). */
  stamp: string | null
}

export interface CacheBackend {
  readonly kind: 'redis' | 'memory'
  lookup(key: string, scopes: readonly string[]): Promise<Lookup>
  /**
   * One round trip: the list entry under its scopes' generations and, when found, each of its items under the
   * item's own generations. `scopes` include the epoch (as in `lookup`).
   */
  lookupList(key: string, scopes: readonly string[], family: ItemFamily): Promise<ListLookup>
  lookupItems(ids: readonly string[], family: ItemFamily): Promise<Lookup[]>
  /**
   * Stores an entry read under `stamp` (the generations of `scopes`, epoch included), and keeps those generations
   * alive at least as long as the entry.
   */
  fill(key: string, scopes: readonly string[], stamp: string, value: string, ttlSeconds: number): Promise<void>
  /** Marks writes in flight on the scopes: until endWrite, readers bypass the cache for them. */
  beginWrite(scopes: readonly string[]): Promise<void>
  /** Gives the scopes new generations, then clears the in-flight mark: entries filled before are never read again. */
  endWrite(scopes: readonly string[]): Promise<void>
  /** Where this process learns of every beginWrite and endWrite, from any instance (opened on first call). */
  invalidations(): InvalidationFeed
  ping(): Promise<void>
  close(): Promise<void>
}

/**
 * The scopes that writes mark and bump, on every instance, as they happen. `null` means "anything may have changed":
 * the feed lost its connection, and writes made meanwhile were not heard.
 */
export type InvalidationListener = (scopes: readonly string[] | null) => void

export interface InvalidationFeed {
  /** Whether every write is being heard now. */
  readonly live: boolean
  /**
   * Settles once every beginWrite and endWrite that completed before the call has been passed to the listeners:
   * true, or false if that cannot be confirmed (the feed is down or did not answer in time).
   */
  sync(): true | Promise<boolean>
  listen(listener: InvalidationListener): void
}

/** A write in flight that never ends (a crashed process) stops bypassing the cache after this long. */
export const WRITE_MARK_TTL_SECONDS = 60

/**
 * How long a generation token lives past the entries filled under it. Generations expire like everything else
 * the cache stores (a catalogue read once must not leave a key for ever): losing a token is always safe, because a
 * fresh token is random and never revives an entry stored under the old one; it only costs misses. So each fill
 * renews the generations it depends on to outlive the entry, and a generation lapses only once no live entry
 * needs it.
 */
export function generationTtlSeconds(entryTtlSeconds: number): number {
  return entryTtlSeconds + 60
}

/** Every lookup also depends on this scope, so one bump invalidates everything (after a missed invalidation). */
export const EPOCH = 'epoch'

export function newToken(): string {
  return Math.random().toString(36).slice(2, 10)
}

export function listEntry(ids: readonly (string | number)[], head: string, tail: string): string {
  return `${ids.join(',')}\n${head}\n${tail}`
}

export function itemScopes(family: ItemFamily, id: string): string[] {
  return [EPOCH, ...family.scopes.map((s) => s.replace('*', id))]
}
