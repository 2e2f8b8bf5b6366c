import {
  type CacheBackend,
  type InvalidationFeed,
  type InvalidationListener,
  type ItemFamily,
  type ListLookup,
  type Lookup,
  WRITE_MARK_TTL_SECONDS,
  itemScopes,
  newToken,
} from './backend.js'

interface Entry {
  value: string
  expiresAt: number
}

/**
 * In-process cache for a single instance without Redis; bounded, least recently used entries go first. Generations
 * are bounded too (one per product ever read would grow without end): each fill moves the generations it depends on
 * to the young end, and past the bound the oldest go. Dropping one is always safe (see generationTtlSeconds): its
 * scope gets a fresh random token, and the entries of the old one are simply never read again.
 */
export class MemoryCacheBackend implements CacheBackend {
  readonly kind = 'memory' as const
  private readonly entries = new Map<string, Entry>()
  private readonly generations = new Map<string, string>()
  private readonly writes = new Map<string, { count: number; expiresAt: number }>()
  private readonly listeners: InvalidationListener[] = []
  // Writes happen in this process, so listeners hear each one before it returns: always in sync.
  private readonly feed: InvalidationFeed = { live: true, sync: () => true, listen: (l) => this.listeners.push(l) }

  constructor(
    private readonly maxEntries = 50_000,
    // Several scopes per entry, most of them shared (epoch, lists, category names).
    private readonly maxGenerations = 2 * maxEntries,
  ) {}

  get generationCount(): number {
    return this.generations.size
  }

  private generation(scope: string): string {
    let token = this.generations.get(scope)
    if (token === undefined) {
      token = newToken()
      this.generations.set(scope, token)
      this.trimGenerations()
    }
    return token
  }

  private trimGenerations(): void {
    while (this.generations.size > this.maxGenerations) {
      const oldest = this.generations.keys().next().value
      if (oldest === undefined) break
      this.generations.delete(oldest)
    }
  }

  private writing(scope: string, now: number): boolean {
    const mark = this.writes.get(scope)
    if (!mark) return false
    if (mark.expiresAt <= now) {
      this.writes.delete(scope)
      return false
    }
    return true
  }

  /** Synchronous, so that a list and its items are read at one instant, as the Redis script does. */
  private find(key: string, scopes: readonly string[], now: number): Lookup {
    const tokens: string[] = []
    for (const scope of scopes) {
      if (this.writing(scope, now)) return { value: null, stamp: null }
      tokens.push(this.generation(scope))
    }
    const stamp = tokens.join('.')
    const full = `${key}@${stamp}`
    const entry = this.entries.get(full)
    if (!entry) return { value: null, stamp }
    if (entry.expiresAt <= now) {
      this.entries.delete(full)
      return { value: null, stamp }
    }
    // Re-insert to keep Map order as recency order for eviction.
    this.entries.delete(full)
    this.entries.set(full, entry)
    return { value: entry.value, stamp }
  }

  async lookup(key: string, scopes: readonly string[]): Promise<Lookup> {
    return this.find(key, scopes, Date.now())
  }

  async lookupList(key: string, scopes: readonly string[], family: ItemFamily): Promise<ListLookup> {
    const now = Date.now()
    const found = this.find(key, scopes, now)
    if (found.value === null) return { body: null, ids: null, list: null, stamp: found.stamp }
    const value = found.value
    const a = value.indexOf('\n')
    const b = value.indexOf('\n', a + 1)
    const ids = a > 0 ? value.slice(0, a).split(',') : []
    const head = value.slice(a + 1, b)
    const tail = value.slice(b + 1)
    const items = this.findItems(ids, family, now)
    if (items.every((i) => i.value !== null)) {
      return { body: head + items.map((i) => i.value).join(',') + tail, ids, list: null, stamp: found.stamp }
    }
    return { body: null, ids: null, list: { ids, head, tail, items }, stamp: found.stamp }
  }

  private findItems(ids: readonly string[], family: ItemFamily, now: number): Lookup[] {
    return ids.map((id) => this.find(family.key + id, itemScopes(family, id), now))
  }

  async lookupItems(ids: readonly string[], family: ItemFamily): Promise<Lookup[]> {
    return this.findItems(ids, family, Date.now())
  }

  async fill(key: string, scopes: readonly string[], stamp: string, value: string, ttlSeconds: number): Promise<void> {
    for (const scope of scopes) {
      const token = this.generations.get(scope)
      if (token === undefined) continue
      this.generations.delete(scope)
      this.generations.set(scope, token)
    }
    const full = `${key}@${stamp}`
    this.entries.delete(full)
    this.entries.set(full, { value, expiresAt: Date.now() + ttlSeconds * 1000 })
    while (this.entries.size > this.maxEntries) {
      const oldest = this.entries.keys().next().value
      if (oldest === undefined) break
      this.entries.delete(oldest)
    }
  }

  async beginWrite(scopes: readonly string[]): Promise<void> {
    const expiresAt = Date.now() + WRITE_MARK_TTL_SECONDS * 1000
    for (const scope of scopes) {
      const mark = this.writes.get(scope)
      this.writes.set(scope, { count: (mark?.count ?? 0) + 1, expiresAt })
    }
    for (const listener of this.listeners) listener(scopes)
  }

  async endWrite(scopes: readonly string[]): Promise<void> {
    for (const scope of scopes) {
      this.generations.delete(scope)
      this.generations.set(scope, newToken())
      const mark = this.writes.get(scope)
      if (!mark || mark.count <= 1) this.writes.delete(scope)
      else mark.count -= 1
    }
    this.trimGenerations()
    for (const listener of this.listeners) listener(scopes)
  }

  invalidations(): InvalidationFeed {
    return this.feed
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.entries.clear()
  }
}
