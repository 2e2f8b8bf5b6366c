import type { FastifyBaseLogger } from 'fastify'
import { type CacheBackend, EPOCH, type ItemFamily, type Lookup, generationTtlSeconds, itemScopes, listEntry } from './backend.js'
import { MemoryCacheBackend } from './memory.js'
import { RedisCacheBackend } from './redis.js'

export type { CacheBackend, InvalidationFeed, ItemFamily } from './backend.js'
export { EPOCH } from './backend.js'

export interface CacheStats {
  hits: number
  misses: number
  errors: number
}

export interface CachedRead {
  body: string
  hit: boolean
}

/** What a list answer holds apart from its items: their ids, and the text around them. */
export interface ListAnswer {
  ids: string[]
  head: string
  tail: string
}

export interface ListSource {
  /** Which items the answer shows (a database query for ids only). */
  list: () => Promise<ListAnswer>
  /** The serialized items with these ids; an id missing from the map no longer exists. */
  items: (ids: readonly string[]) => Promise<Map<string, string>>
  /**
   * The whole answer from one consistent read (the list and its items in a single statement), used when nothing
   * is taken from the cache: one database round trip instead of two, and no item can vanish in between.
   */
  whole?: () => Promise<{ list: ListAnswer; items: string[] }>
}

const assemble = (list: ListAnswer, items: readonly string[]) => list.head + items.join(',') + list.tail

/**
 * Cache-aside reads with exact invalidation and no stale window:
 * - writers mark their scopes before their transaction commits and bump them after (`invalidate`);
 * - readers bypass the cache while a write is in flight, and only fill under the generation they saw before
 *   reading the database, so an answer read before a commit can never be served after it;
 * - concurrent misses for one key on this instance share one database query (single-flight).
 */
export class VersionedCache {
  readonly stats: CacheStats = { hits: 0, misses: 0, errors: 0 }
  private readonly inflight = new Map<string, Promise<string>>()
  private readonly inflightLists = new Map<string, Promise<ListAnswer>>()
  private readonly inflightItems = new Map<string, Promise<string | null>>()
  private repairing = false

  constructor(
    readonly backend: CacheBackend,
    private readonly ttlSeconds: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  get enabled(): boolean {
    return this.ttlSeconds > 0
  }

  /** Off, or repairing a lost invalidation: nothing cached may be served. */
  get bypassed(): boolean {
    return !this.enabled || this.repairing
  }

  async read(key: string, scopes: readonly string[], load: () => Promise<string>): Promise<CachedRead> {
    // While a lost invalidation is being repaired, entries may be stale: read through until the epoch is bumped.
    if (this.bypassed) {
      this.stats.misses++
      return { body: await load(), hit: false }
    }
    const allScopes = [EPOCH, ...scopes]
    let stamp: string | null = null
    try {
      const found = await this.backend.lookup(key, allScopes)
      if (found.value !== null) {
        this.stats.hits++
        return { body: found.value, hit: true }
      }
      stamp = found.stamp
    } catch (err) {
      this.failed('lookup', err)
    }
    this.stats.misses++
    if (stamp === null) return { body: await load(), hit: false }
    const flightKey = `${key}@${stamp}`
    let flight = this.inflight.get(flightKey)
    if (!flight) {
      const fillStamp = stamp
      flight = load()
        .then(async (body) => {
          await this.backend.fill(key, allScopes, fillStamp, body, this.ttlSeconds).catch((err) => this.failed('fill', err))
          return body
        })
        .finally(() => this.inflight.delete(flightKey))
      this.inflight.set(flightKey, flight)
    }
    return { body: await flight, hit: false }
  }

  /**
   * A list answer assembled from a list entry (which items, and the text around them) and one entry per item, all
   * read in one round trip. A write to one item then costs that item's entry only, and lists stay cached unless the
   * write changes which items they hold. The answer is put together by concatenating the stored item texts.
   *
   * `hit` is true only when the list entry and every item entry were found: an answer that needed the database
   * for any part of it is a MISS.
   */
  async readList(key: string, scopes: readonly string[], family: ItemFamily, source: ListSource): Promise<CachedRead> {
    const { body, hit } = await this.readListShowing(key, scopes, family, source)
    return { body, hit }
  }

  /** `readList`, also telling on a hit which items the answer shows. */
  async readListShowing(key: string, scopes: readonly string[], family: ItemFamily, source: ListSource): Promise<CachedRead & { ids?: string[] }> {
    if (this.bypassed) return this.readListThrough(source)
    const allScopes = [EPOCH, ...scopes]
    let found
    try {
      found = await this.backend.lookupList(key, allScopes, family)
    } catch (err) {
      this.failed('lookup', err)
      return this.readListThrough(source)
    }
    if (found.body !== null) {
      this.stats.hits++
      return { body: found.body, hit: true, ids: found.ids ?? [] }
    }
    this.stats.misses++
    let list: ListAnswer
    let lookups: Lookup[]
    if (found.list) {
      list = found.list
      lookups = found.list.items
    } else {
      if (found.stamp === null) return this.readListThrough(source)
      list = await this.loadList(key, allScopes, found.stamp, source)
      lookups = await this.backend.lookupItems(list.ids, family).catch((err) => {
        this.failed('lookup', err)
        return list.ids.map(() => ({ value: null, stamp: null }))
      })
    }
    const items = await this.resolveItems(list.ids, lookups, family, source.items)
    // An item gone from the database was deleted after the list entry was read: answer from the database alone.
    if (items === null) return this.readListThrough(source)
    return { body: assemble(list, items), hit: false }
  }

  /**
   * Refills item entries after a write (called once it has committed), so readers keep hitting: for the rare writes
   * (staff edits and stock adjustments, cancellations). Orders leave theirs to the next read (orders/placing.ts).
   */
  async refreshItems(ids: readonly string[], family: ItemFamily, load: ListSource['items']): Promise<void> {
    if (this.bypassed || !ids.length) return
    try {
      await this.resolveItems(ids, await this.backend.lookupItems(ids, family), family, load)
    } catch (err) {
      this.failed('refresh', err)
    }
  }

  private async readListThrough(source: ListSource): Promise<CachedRead> {
    if (source.whole) {
      const { list, items } = await source.whole()
      return { body: assemble(list, items), hit: false }
    }
    // The ids and the items are two statements: an item deleted in between is retried once more, then left out.
    for (let attempt = 0; ; attempt++) {
      const list = await source.list()
      const found = await source.items(list.ids)
      const items = list.ids.map((id) => found.get(id))
      if (items.every((i) => i !== undefined) || attempt === 2) {
        return { body: assemble(list, items.filter((i) => i !== undefined)), hit: false }
      }
    }
  }

  private loadList(key: string, scopes: readonly string[], stamp: string, source: ListSource): Promise<ListAnswer> {
    const flightKey = `${key}@${stamp}`
    let flight = this.inflightLists.get(flightKey)
    if (!flight) {
      flight = source
        .list()
        .then(async (list) => {
          await this.backend
            .fill(key, scopes, stamp, listEntry(list.ids, list.head, list.tail), this.ttlSeconds)
            .catch((err) => this.failed('fill', err))
          return list
        })
        .finally(() => this.inflightLists.delete(flightKey))
      this.inflightLists.set(flightKey, flight)
    }
    return flight
  }

  /**
   * The items' texts, loading the missing ones in one batch (and sharing loads already under way for the same
   * generation), filling each under the stamp read before the database was; null if one no longer exists.
   */
  private async resolveItems(
    ids: readonly string[],
    lookups: readonly Lookup[],
    family: ItemFamily,
    load: ListSource['items'],
  ): Promise<string[] | null> {
    const values: (string | null | Promise<string | null>)[] = lookups.map((l) => l.value)
    const batch: { index: number; stamp: string | null }[] = []
    for (let i = 0; i < ids.length; i++) {
      if (values[i] !== null) continue
      const stamp = lookups[i]!.stamp
      const shared = stamp === null ? undefined : this.inflightItems.get(`${family.key}${ids[i]}@${stamp}`)
      if (shared) values[i] = shared
      else batch.push({ index: i, stamp })
    }
    if (batch.length) {
      const loaded = load(batch.map((b) => ids[b.index]!))
      for (const { index, stamp } of batch) {
        const id = ids[index]!
        const key = `${family.key}${id}`
        const one = loaded.then(async (found) => {
          const value = found.get(id) ?? null
          if (value !== null && stamp !== null) {
            await this.backend.fill(key, itemScopes(family, id), stamp, value, this.ttlSeconds).catch((err) => this.failed('fill', err))
          }
          return value
        })
        values[index] = one
        if (stamp !== null) {
          const flightKey = `${key}@${stamp}`
          this.inflightItems.set(flightKey, one)
          void one.finally(() => this.inflightItems.delete(flightKey)).catch(() => {})
        }
      }
    }
    // eslint-disable-next-line @typescript-eslint/await-thenable -- settled values and pending loads mixed, as Promise.all allows
    const resolved = await Promise.all(values)
    return resolved.every((v) => v !== null) ? (resolved) : null
  }

  /**
   * Runs `work` (a transaction) with the scopes it changes invalidated around its commit. `mark` may be called
   * inside the transaction, before commit, once the affected scopes are known; it may be called several times.
   *
   * `then`, given what `work` returned, runs once it succeeded, started in the same tick as the bump: on one Redis
   * connection its first commands travel with the bump (one round trip, not two) and run after it, so a refill it
   * looks up is stamped with the new generations. Awaited with the bump.
   */
  async invalidate<T>(
    work: (mark: (scopes: readonly string[]) => Promise<void>) => Promise<T>,
    then?: (result: T) => Promise<unknown>,
  ): Promise<T> {
    const marked: string[] = []
    const mark = async (scopes: readonly string[]) => {
      const fresh = scopes.filter((s) => !marked.includes(s))
      if (!fresh.length) return
      marked.push(...fresh)
      await this.backend.beginWrite(fresh).catch((err) => {
        this.failed('beginWrite', err)
        this.repairLater()
      })
    }
    const bump = async () => {
      if (!marked.length) return
      await this.backend.endWrite(marked).catch((err) => {
        this.failed('endWrite', err)
        this.repairLater(marked)
      })
    }
    let result: T
    try {
      result = await work(mark)
    } catch (err) {
      await bump()
      throw err
    }
    await Promise.all([bump(), then?.(result)])
    return result
  }

  /**
   * An invalidation that did not reach the cache leaves entries that may be stale: once the cache answers again,
   * every entry is dropped by bumping the epoch (and the write marks are cleared).
   */
  private repairLater(scopes: readonly string[] = []): void {
    if (this.repairing) return
    this.repairing = true
    const attempt = () => {
      this.backend
        .endWrite([EPOCH, ...scopes])
        .then(() => {
          this.repairing = false
          this.log.warn('cache reachable again: all cached entries invalidated')
        })
        .catch(() => setTimeout(attempt, 500).unref())
    }
    attempt()
  }

  private failed(operation: string, err: unknown): void {
    this.stats.errors++
    this.log.warn({ err, operation }, 'cache unavailable, serving from the database')
  }

  close(): Promise<void> {
    return this.backend.close()
  }
}

/** `ttlSeconds`: the entries' lifetime, which the generations they depend on outlive. */
export function createCacheBackend(redisUrl: string | undefined, prefix: string, ttlSeconds: number): CacheBackend {
  return redisUrl ? new RedisCacheBackend(redisUrl, prefix, generationTtlSeconds(ttlSeconds)) : new MemoryCacheBackend()
}
