import { createHash } from 'node:crypto'
import { LRUCache } from 'lru-cache'
import { EPOCH, type InvalidationFeed, type ItemFamily, itemScopes } from './backend.js'
import type { ListSource, VersionedCache } from './index.js'

/** A finished answer: the bytes sent, and the ETag that names them. */
export interface CachedResponse {
  body: Buffer
  etag: string
  hit: boolean
}

interface Entry {
  body: Buffer
  etag: string
  scopes: readonly string[]
}

/** The invalidations heard since a read began; older reads than the oldest remembered insert nothing. */
const REMEMBERED_INVALIDATIONS = 256

/** A strong validator: a digest of the bytes, so it changes whenever the body does, on every instance alike. */
export function etagOf(body: Buffer): string {
  return `"${createHash('sha1').update(body).digest('base64url')}"`
}

/**
 * The first level: finished answers in this process, bounded by bytes, in front of the shared cache.
 *
 * An entry is served only if every write completed before the request arrived has been heard (`feed.sync`), and
 * each heard write drops the entries depending on its scopes, so an entry is never older than a write whose
 * response any client has received. An entry is stored only if it was found in the shared cache (under the current
 * generations, with no write in flight) and no write to its scopes was heard since before it was looked up: a
 * write heard in between could otherwise be undone by storing what was read before it. While the feed is down the
 * first level is empty and skipped.
 */
export class ResponseCache {
  private readonly entries: LRUCache<string, Entry> | undefined
  /** Keys by scope, for dropping by scope without a scan. The epoch is not indexed: it drops everything. */
  private readonly byScope = new Map<string, Set<string>>()
  /** Count of invalidations heard, and the latest ones (null: everything). */
  private heard = 0
  private readonly recent: (ReadonlySet<string> | null)[] = []
  l1Hits = 0

  constructor(
    private readonly cache: VersionedCache,
    private readonly feed: InvalidationFeed | undefined,
    maxBytes: number,
    ttlSeconds: number,
  ) {
    if (!feed || maxBytes <= 0 || ttlSeconds <= 0) return
    this.entries = new LRUCache<string, Entry>({
      maxSize: maxBytes,
      sizeCalculation: (entry, key) => entry.body.length + entry.etag.length + key.length,
      ttl: ttlSeconds * 1000,
      dispose: (entry, key) => this.unindex(key, entry.scopes),
    })
    feed.listen((scopes) => this.invalidate(scopes))
  }

  get bytes(): number {
    return this.entries?.calculatedSize ?? 0
  }

  read(key: string, scopes: readonly string[], load: () => Promise<string>): Promise<CachedResponse> {
    const depends = [EPOCH, ...scopes]
    return this.serve(key, async () => {
      const read = await this.cache.read(key, scopes, load)
      return { ...read, scopes: depends }
    })
  }

  /** A list answer depends on its own scopes and on those of every item it shows. */
  readList(key: string, scopes: readonly string[], family: ItemFamily, source: ListSource): Promise<CachedResponse> {
    return this.serve(key, async () => {
      const read = await this.cache.readListShowing(key, scopes, family, source)
      const depends = read.ids ? [EPOCH, ...scopes, ...read.ids.flatMap((id) => itemScopes(family, id).slice(1))] : []
      return { body: read.body, hit: read.hit, scopes: depends }
    })
  }

  private async serve(
    key: string,
    shared: () => Promise<{ body: string; hit: boolean; scopes: readonly string[] }>,
  ): Promise<CachedResponse> {
    const since = await this.synced()
    if (since !== null) {
      const entry = this.entries!.get(key)
      if (entry) {
        this.cache.stats.hits++
        this.l1Hits++
        return { body: entry.body, etag: entry.etag, hit: true }
      }
    }
    const read = await shared()
    const body = Buffer.from(read.body)
    const etag = etagOf(body)
    if (since !== null && read.hit && this.unchangedSince(since, read.scopes)) {
      this.entries!.set(key, { body, etag, scopes: read.scopes })
      if (this.entries!.has(key)) this.index(key, read.scopes)
    }
    return { body, etag, hit: read.hit }
  }

  /** The count of invalidations heard once every write completed so far has been heard; null: do not use the L1. */
  private async synced(): Promise<number | null> {
    if (!this.entries || this.cache.bypassed) return null
    const sync = this.feed!.sync()
    if (sync !== true && !(await sync)) return null
    return this.heard
  }

  private unchangedSince(since: number, scopes: readonly string[]): boolean {
    const missed = this.heard - since
    if (missed === 0) return true
    if (missed > this.recent.length) return false
    for (let i = this.recent.length - missed; i < this.recent.length; i++) {
      const changed = this.recent[i]
      if (!changed || scopes.some((s) => changed.has(s))) return false
    }
    return true
  }

  private invalidate(scopes: readonly string[] | null): void {
    this.heard++
    this.recent.push(scopes && !scopes.includes(EPOCH) ? new Set(scopes) : null)
    if (this.recent.length > REMEMBERED_INVALIDATIONS) this.recent.shift()
    if (!scopes || scopes.includes(EPOCH)) {
      this.entries!.clear()
      return
    }
    for (const scope of scopes) {
      const keys = this.byScope.get(scope)
      if (keys) for (const key of [...keys]) this.entries!.delete(key)
    }
  }

  private index(key: string, scopes: readonly string[]): void {
    for (const scope of scopes) {
      if (scope === EPOCH) continue
      let keys = this.byScope.get(scope)
      if (!keys) this.byScope.set(scope, (keys = new Set()))
      keys.add(key)
    }
  }

  private unindex(key: string, scopes: readonly string[]): void {
    for (const scope of scopes) {
      const keys = this.byScope.get(scope)
      if (!keys) continue
      keys.delete(key)
      if (!keys.size) this.byScope.delete(scope)
    }
  }
}
