import type { FastifyBaseLogger } from 'fastify'
import type { Config } from './config/index.js'
import { type Database, type Db, createDatabase } from './db/index.js'
import type { Redis } from 'ioredis'
import { VersionedCache, createCacheBackend } from './cache/index.js'
import { ResponseCache } from './cache/responses.js'
import { RedisCacheBackend, connectedOrNot } from './cache/redis.js'
import { type PubSub, createPubSub } from './pubsub/index.js'
import { type Auth, createAuth } from './auth/index.js'
import { controlHandler } from './ops/control.js'

/**
 * The composition root: everything built once per process (the infrastructure, then auth on top of it), from which
 * app.ts hands each slice what it uses. No slice and no infrastructure module imports this one.
 */
export interface AppContext extends Auth {
  config: Config
  database: Database
  db: Db
  cache: VersionedCache
  /** Finished catalogue answers, in this process, in front of `cache`. */
  responses: ResponseCache
  pubsub: PubSub
  log: FastifyBaseLogger
}

export interface ContextOverrides {
  database?: Database
  /** Share another app's in-process pub/sub: two embedded instances in one test process. */
  pubsub?: PubSub
  onQuery?: (query: string) => void
  /** The cluster primary has already migrated. */
  skipMigrations?: boolean
}

/** Connects to the database (and migrates it), the cache and pub/sub; throws a one-line reason if the database is unreachable. */
export async function createContext(config: Config, log: FastifyBaseLogger, overrides: ContextOverrides = {}): Promise<AppContext> {
  const database =
    overrides.database ??
    (await createDatabase({
      url: config.databaseUrl,
      dataDir: config.databaseUrl ? undefined : config.dataDir,
      poolSize: config.dbPoolSize,
      statementTimeoutMs: config.dbStatementTimeoutMs,
      onQuery: overrides.onQuery,
    }))
  if (!overrides.database) {
    try {
      await database.ping(5_000)
    } catch (err) {
      await database.close().catch(() => {})
      throw new Error(`DATABASE_URL: cannot connect (${(err as Error).message || String(err)})`, { cause: err })
    }
    if (!overrides.skipMigrations) await database.migrate()
  }
  const backend = createCacheBackend(config.redisUrl, config.redisPrefix, config.cacheTtlSeconds)
  if (backend instanceof RedisCacheBackend) {
    reportRedisReachability(backend.connection, log)
    await connectedOrNot(backend.connection)
  }
  const cache = new VersionedCache(backend, config.cacheTtlSeconds, log)
  const l1 = config.cacheL1Bytes > 0 && config.cacheTtlSeconds > 0
  const responses = new ResponseCache(cache, l1 ? backend.invalidations() : undefined, config.cacheL1Bytes, config.cacheTtlSeconds)
  const pubsub = overrides.pubsub ?? createPubSub(config.redisUrl, config.redisPrefix, log)
  const auth = await createAuth({ db: database.db, pubsub, config })
  const ctx = { config, database, db: database.db, cache, responses, pubsub, log, ...auth }
  // CLI commands run against an embedded data folder this process holds are answered here.
  database.control?.handle(controlHandler(ctx))
  return ctx
}

/**
 * One line when Redis cannot be reached (at start, or later), saying what runs degraded meanwhile, and one when it
 * is back; the clients keep retrying on their own. The cache's connection stands for all of them (cache, pub/sub and
 * rate-limit counters share the server).
 */
function reportRedisReachability(connection: Redis, log: FastifyBaseLogger): void {
  const { host, port } = connection.options
  let down = false
  let lastError = ''
  connection.on('error', (err: Error) => {
    lastError = err.message
  })
  // 'reconnecting' follows a failed or lost connection that will be retried; a deliberate disconnect never emits it.
  connection.on('reconnecting', () => {
    if (down) return
    down = true
    log.warn(
      `Redis at ${host}:${port} is unreachable${lastError ? ` (${lastError})` : ''}; retrying. Meanwhile: catalogue reads ` +
        'bypass the shared cache (served from the database), notifications and session revocations reach only ' +
        'sockets on this instance, and rate-limit counters are not shared (throttled requests are let through)',
    )
  })
  connection.on('ready', () => {
    if (!down) return
    down = false
    log.info(`Redis at ${host}:${port} is reachable again: shared cache, cross-instance pushes and revocations, rate-limit counters restored`)
  })
}

export async function closeContext(ctx: AppContext): Promise<void> {
  await ctx.sessions.stop()
  await Promise.allSettled([ctx.cache.close(), ctx.pubsub.close()])
  await ctx.database.close()
}
