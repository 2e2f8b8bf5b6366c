import type { FastifyRequest } from 'fastify'
import { E_TIMEOUT, Semaphore, type SemaphoreInterface, withTimeout } from 'async-mutex'
import { LruMap } from 'toad-cache'
import type { Config } from '../config/index.js'
import { serviceUnavailable } from './errors.js'
import { clientKey, throttled } from './ratelimit.js'

interface Bucket {
  tokens: number
  at: number
}

/** Client addresses remembered; past that the least recently seen start again with a full bucket. */
const MAX_CLIENTS = 50_000

/**
 * Public catalogue reads cost the database only when they miss the cache, so that is where one client is limited:
 * a miss is charged to its address (a token bucket per address, in process: a hit pays nothing, not even a counter),
 * and expensive queries (lists and searches) run in a bounded number of slots, so they can never hold every pooled
 * connection while logins, carts, orders and cheap reads wait for one.
 */
export class ReadLimits {
  private readonly buckets: LruMap<Bucket> | undefined
  private readonly perMs: number
  private readonly slots: SemaphoreInterface

  constructor(private readonly config: Pick<Config, 'rateLimit' | 'readRateLimit' | 'readConcurrency' | 'dbStatementTimeoutMs'>) {
    this.buckets = config.rateLimit ? new LruMap<Bucket>(MAX_CLIENTS) : undefined
    this.perMs = config.readRateLimit / 60_000
    // A slot frees within one statement timeout; waiting longer than that for one only adds to the pile.
    this.slots = withTimeout(new Semaphore(config.readConcurrency), config.dbStatementTimeoutMs || 5_000)
  }

  /** Spends one of the client's uncached reads: 429 (with Retry-After) once its budget is spent. */
  charge(request: FastifyRequest): void {
    if (!this.buckets) return
    const key = clientKey(request.ip)
    const now = Date.now()
    const capacity = this.config.readRateLimit
    const bucket = this.buckets.get(key) ?? { tokens: capacity, at: now }
    bucket.tokens = Math.min(capacity, bucket.tokens + (now - bucket.at) * this.perMs)
    bucket.at = now
    this.buckets.set(key, bucket)
    if (bucket.tokens < 1) throw throttled((1 - bucket.tokens) / this.perMs / 1000)
    bucket.tokens -= 1
  }

  /**
   * `load` as the loader of a cache miss: charged to the client, and for an expensive query run in a slot (503 with
   * Retry-After when none frees in time).
   */
  miss<T>(request: FastifyRequest, load: () => Promise<T>, expensive = false): () => Promise<T> {
    return async () => {
      this.charge(request)
      if (!expensive) return load()
      try {
        return await this.slots.runExclusive(load)
      } catch (err) {
        if (err === E_TIMEOUT) throw serviceUnavailable()
        throw err
      }
    }
  }
}
