import { Redis } from 'ioredis'
import { type CacheBackend, type Lookup, WRITE_MARK_TTL_SECONDS, newToken } from './backend.js'

// Generation tokens are random, not counters: if Redis evicts or loses a token, a fresh one can never revive
// entries stored under an older one.
const LOOKUP = `
local tokens = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i] .. ':w') == 1 then return {false, false} end
  local token = redis.call('GET', KEYS[i])
  if not token then
    token = ARGV[1] .. i
    redis.call('SET', KEYS[i], token)
  end
  tokens[#tokens + 1] = token
end
local stamp = table.concat(tokens, '.')
return {redis.call('GET', KEYS[1] .. '@' .. stamp), stamp}
`

const BEGIN_WRITE = `
for i = 1, #KEYS do
  redis.call('INCR', KEYS[i] .. ':w')
  redis.call('EXPIRE', KEYS[i] .. ':w', ARGV[1])
end
return 1
`

const END_WRITE = `
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1] .. i)
  if redis.call('DECR', KEYS[i] .. ':w') <= 0 then redis.call('DEL', KEYS[i] .. ':w') end
end
return 1
`

type Scripted = Redis & {
  cacheLookup(...args: (string | number)[]): Promise<[string | null, string | null]>
  cacheBeginWrite(...args: (string | number)[]): Promise<number>
  cacheEndWrite(...args: (string | number)[]): Promise<number>
}

export class RedisCacheBackend implements CacheBackend {
  readonly kind = 'redis' as const
  private readonly redis: Scripted

  constructor(url: string, prefix: string) {
    const redis = new Redis(url, {
      keyPrefix: `${prefix}c:`,
      // Fail fast while disconnected: callers fall back to the database instead of queueing behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Commands issued in the same tick share one write: under load, one syscall for many cache reads.
      enableAutoPipelining: true,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    })
    redis.on('error', () => {})
    redis.defineCommand('cacheLookup', { lua: LOOKUP })
    redis.defineCommand('cacheBeginWrite', { lua: BEGIN_WRITE })
    redis.defineCommand('cacheEndWrite', { lua: END_WRITE })
    this.redis = redis as Scripted
  }

  get connection(): Redis {
    return this.redis
  }

  async lookup(key: string, scopes: readonly string[]): Promise<Lookup> {
    const [value, stamp] = await this.redis.cacheLookup(scopes.length + 1, key, ...scopes, newToken())
    return { value: value ?? null, stamp: stamp ?? null }
  }

  async fill(key: string, stamp: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.set(`${key}@${stamp}`, value, 'EX', ttlSeconds)
  }

  async beginWrite(scopes: readonly string[]): Promise<void> {
    if (scopes.length) await this.redis.cacheBeginWrite(scopes.length, ...scopes, WRITE_MARK_TTL_SECONDS)
  }

  async endWrite(scopes: readonly string[]): Promise<void> {
    if (scopes.length) await this.redis.cacheEndWrite(scopes.length, ...scopes, newToken())
  }

  async ping(): Promise<void> {
    await this.redis.ping()
  }

  async close(): Promise<void> {
    this.redis.disconnect()
  }
}
