import type { FastifyBaseLogger } from 'fastify'
import type { CacheBackend } from './backend.js'
import { MemoryCacheBackend } from './memory.js'
import { RedisCacheBackend } from './redis.js'

export type { CacheBackend } from './backend.js'

/** Every lookup also depends on this scope, so one bump invalidates everything (after a missed invalidation). */
const EPOCH = 'epoch'

export interface CacheStats {
  hits: number
  misses: number
  errors: number
}

export interface CachedRead {
  body: string
  hit: boolean
}

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
  private repairing = false

  constructor(
    readonly backend: CacheBackend,
    private readonly ttlSeconds: number,
    private readonly log: FastifyBaseLogger,
  ) {}

  get enabled(): boolean {
    return this.ttlSeconds > 0
  }

  async read(key: string, scopes: readonly string[], load: () => Promise<string>): Promise<CachedRead> {
    // While a lost invalidation is being repaired, entries may be stale: read through until the epoch is bumped.
    if (!this.enabled || this.repairing) {
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
          await this.backend.fill(key, fillStamp, body, this.ttlSeconds).catch((err) => this.failed('fill', err))
          return body
        })
        .finally(() => this.inflight.delete(flightKey))
      this.inflight.set(flightKey, flight)
    }
    return { body: await flight, hit: false }
  }

  /**
   * Runs `work` (a transaction) with the scopes it changes invalidated around its commit. `mark` may be called
   * inside the transaction, before commit, once the affected scopes are known; it may be called several times.
   */
  async invalidate<T>(work: (mark: (scopes: readonly string[]) => Promise<void>) => Promise<T>): Promise<T> {
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
    try {
      return await work(mark)
    } finally {
      if (marked.length) {
        await this.backend.endWrite(marked).catch((err) => {
          this.failed('endWrite', err)
          this.repairLater(marked)
        })
      }
    }
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

export function createCacheBackend(redisUrl: string | undefined, prefix: string): CacheBackend {
  return redisUrl ? new RedisCacheBackend(redisUrl, prefix) : new MemoryCacheBackend()
}
