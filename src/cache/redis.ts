import { once } from 'node:events'
import { Redis } from 'ioredis'
import {
  type CacheBackend,
  type InvalidationFeed,
  type ItemFamily,
  type ListLookup,
  type Lookup,
  WRITE_MARK_TTL_SECONDS,
  newToken,
} from './backend.js'
import { RedisInvalidationFeed } from './feed.js'

// Generation tokens are random, not counters: if Redis evicts or loses a token, a fresh one can never revive
// entries stored under an older one.
const LOOKUP = `
local tokens = {}
for i = 2, #KEYS do
  if redis.call('EXISTS', KEYS[i] .. ':w') == 1 then return {false, false} end
  local token = redis.call('GET', KEYS[i])
  if not token then
    token = ARGV[1] .. i
    redis.call('SET', KEYS[i], token, 'EX', ARGV[2])
  end
  tokens[#tokens + 1] = token
end
local stamp = table.concat(tokens, '.')
return {redis.call('GET', KEYS[1] .. '@' .. stamp), stamp}
`

/**
 * Shared by the list and items scripts. ARGV: [1] token seed, [2] key prefix (ioredis prefixes KEYS only, and item
 * keys are derived from ids), [3] item key, [4] generation lifetime, [5] number of item scope templates, then the
 * templates ('*' = the id). Generations are memoized per call: the epoch and category-names scopes are read once for
 * a whole page.
 */
const ITEM_HELPERS = `
local seed, prefix, itemKey, generationTtl, ntemplates = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
local memo, fresh = {}, 0
local function token(k)
  local t = memo[k]
  if t ~= nil then return t end
  if redis.call('EXISTS', k .. ':w') == 1 then
    t = false
  else
    t = redis.call('GET', k)
    if not t then
      fresh = fresh + 1
      t = seed .. fresh
      redis.call('SET', k, t, 'EX', generationTtl)
    end
  end
  memo[k] = t
  return t
end
local function stampOf(keys)
  local tokens = {}
  for i = 1, #keys do
    local t = token(keys[i])
    if not t then return false end
    tokens[i] = t
  end
  return table.concat(tokens, '.')
end
local function item(id)
  local keys = {prefix .. 'epoch'}
  for i = 1, ntemplates do keys[i + 1] = prefix .. string.gsub(ARGV[5 + i], '%*', id) end
  local s = stampOf(keys)
  if not s then return false, false end
  local v = redis.call('GET', prefix .. itemKey .. id .. '@' .. s)
  if v then return v, false end
  return false, s
end
`

// KEYS: the list entry, then its scopes. Replies {body, ids} when the list and every item were found; {false, stamp}
// when the list was not (stamp false: a write is in flight); else {ids, head, tail, value1, stamp1, ...}.
const LOOKUP_LIST = `${ITEM_HELPERS}
local scopes = {}
for i = 2, #KEYS do scopes[i - 1] = KEYS[i] end
local listStamp = stampOf(scopes)
if not listStamp then return {false, false} end
local entry = redis.call('GET', KEYS[1] .. '@' .. listStamp)
if not entry then return {false, listStamp} end
local a = string.find(entry, '\\n', 1, true)
local b = string.find(entry, '\\n', a + 1, true)
local ids, head, tail = string.sub(entry, 1, a - 1), string.sub(entry, a + 1, b - 1), string.sub(entry, b + 1)
local out, parts, all = {ids, head, tail}, {}, true
for id in string.gmatch(ids, '[^,]+') do
  local v, s = item(id)
  out[#out + 1] = v
  out[#out + 1] = s
  if v then parts[#parts + 1] = v else all = false end
end
if all then return {head .. table.concat(parts, ',') .. tail, ids} end
return out
`

// ARGV after the templates: the ids. Replies {value1, stamp1, ...}.
const LOOKUP_ITEMS = `${ITEM_HELPERS}
local out = {}
for i = 6 + ntemplates, #ARGV do
  local v, s = item(ARGV[i])
  out[#out + 1] = v
  out[#out + 1] = s
end
return out
`

// The write scripts publish the scopes they change (see RedisInvalidationFeed): from inside the script, so that the
// message is queued to every subscriber before the writer is answered.
const BEGIN_WRITE = `
for i = 1, #KEYS do
  redis.call('INCR', KEYS[i] .. ':w')
  redis.call('EXPIRE', KEYS[i] .. ':w', ARGV[1])
end
redis.call('PUBLISH', ARGV[2], table.concat(KEYS, '\\n'))
return 1
`

const END_WRITE = `
for i = 1, #KEYS do
  redis.call('SET', KEYS[i], ARGV[1] .. i, 'EX', ARGV[2])
  if redis.call('DECR', KEYS[i] .. ':w') <= 0 then redis.call('DEL', KEYS[i] .. ':w') end
end
redis.call('PUBLISH', ARGV[3], table.concat(KEYS, '\\n'))
return 1
`

// KEYS: the entry, then the scopes it was read under. ARGV: value, entry lifetime, generation lifetime.
const FILL = `
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
for i = 2, #KEYS do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
return 1
`

type Scripted = Redis & {
  cacheFill(...args: (string | number)[]): Promise<number>
  cacheLookup(...args: (string | number)[]): Promise<[string | null, string | null]>
  cacheLookupList(...args: (string | number)[]): Promise<(string | null)[]>
  cacheLookupItems(...args: (string | number)[]): Promise<(string | null)[]>
  cacheBeginWrite(...args: (string | number)[]): Promise<number>
  cacheEndWrite(...args: (string | number)[]): Promise<number>
}

/**
 * Resolves once `redis` is connected, or after `ms`, or at its first connection error: an instance starting waits for
 * its Redis connections so that its first requests use them (before, the cache is bypassed and rate-limit counters
 * let requests through), while a Redis outage at start delays nothing.
 */
export async function connectedOrNot(redis: Redis, ms = 2_000): Promise<void> {
  if (redis.status === 'ready') return
  await once(redis, 'ready', { signal: AbortSignal.timeout(ms) }).catch(() => {})
}

export class RedisCacheBackend implements CacheBackend {
  readonly kind = 'redis' as const
  private readonly redis: Scripted

  private readonly keyPrefix: string
  private readonly channel: string
  private feed: RedisInvalidationFeed | undefined

  constructor(
    private readonly url: string,
    prefix: string,
    private readonly generationTtl: number,
  ) {
    this.keyPrefix = `${prefix}c:`
    this.channel = `${prefix}c:invalidations`
    const redis = new Redis(url, {
      keyPrefix: this.keyPrefix,
      // Fail fast while disconnected: callers fall back to the database instead of queueing behind an outage.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      // Commands issued in the same tick share one write: under load, one syscall for many cache reads.
      enableAutoPipelining: true,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    })
    redis.on('error', () => {})
    redis.defineCommand('cacheLookup', { lua: LOOKUP })
    redis.defineCommand('cacheLookupList', { lua: LOOKUP_LIST })
    redis.defineCommand('cacheLookupItems', { lua: LOOKUP_ITEMS })
    redis.defineCommand('cacheBeginWrite', { lua: BEGIN_WRITE })
    redis.defineCommand('cacheEndWrite', { lua: END_WRITE })
    redis.defineCommand('cacheFill', { lua: FILL })
    this.redis = redis as Scripted
  }

  get connection(): Redis {
    return this.redis
  }

  async lookup(key: string, scopes: readonly string[]): Promise<Lookup> {
    const [value, stamp] = await this.redis.cacheLookup(scopes.length + 1, key, ...scopes, newToken(), this.generationTtl)
    return { value: value ?? null, stamp: stamp ?? null }
  }

  private familyArgs(family: ItemFamily): (string | number)[] {
    return [newToken(), this.keyPrefix, family.key, this.generationTtl, family.scopes.length, ...family.scopes]
  }

  async lookupList(key: string, scopes: readonly string[], family: ItemFamily): Promise<ListLookup> {
    const reply = await this.redis.cacheLookupList(scopes.length + 1, key, ...scopes, ...this.familyArgs(family))
    if (reply.length === 2) {
      if (reply[0] !== null) return { body: reply[0]!, ids: splitIds(reply[1]!), list: null, stamp: null }
      return { body: null, ids: null, list: null, stamp: reply[1] ?? null }
    }
    return { body: null, ids: null, list: { ids: splitIds(reply[0]!), head: reply[1]!, tail: reply[2]!, items: pairs(reply, 3) }, stamp: null }
  }

  async lookupItems(ids: readonly string[], family: ItemFamily): Promise<Lookup[]> {
    if (!ids.length) return []
    return pairs(await this.redis.cacheLookupItems(0, ...this.familyArgs(family), ...ids), 0)
  }

  async fill(key: string, scopes: readonly string[], stamp: string, value: string, ttlSeconds: number): Promise<void> {
    await this.redis.cacheFill(scopes.length + 1, `${key}@${stamp}`, ...scopes, value, ttlSeconds, this.generationTtl)
  }

  async beginWrite(scopes: readonly string[]): Promise<void> {
    if (scopes.length) await this.redis.cacheBeginWrite(scopes.length, ...scopes, WRITE_MARK_TTL_SECONDS, this.channel)
  }

  async endWrite(scopes: readonly string[]): Promise<void> {
    if (scopes.length) await this.redis.cacheEndWrite(scopes.length, ...scopes, newToken(), this.generationTtl, this.channel)
  }

  invalidations(): InvalidationFeed {
    this.feed ??= new RedisInvalidationFeed(this.url, this.channel, this.keyPrefix)
    return this.feed
  }

  async ping(): Promise<void> {
    await this.redis.ping()
  }

  async close(): Promise<void> {
    this.feed?.close()
    this.redis.disconnect()
  }
}

const splitIds = (ids: string) => (ids ? ids.split(',') : [])

function pairs(reply: (string | null)[], from: number): Lookup[] {
  const out: Lookup[] = []
  for (let i = from; i < reply.length; i += 2) out.push({ value: reply[i] ?? null, stamp: reply[i + 1] ?? null })
  return out
}
