import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, onRequestHookHandler, preHandlerHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import ipaddr from 'ipaddr.js'
import { connectedOrNot } from '../cache/redis.js'
import type { Config, RateLimitScope } from '../config/index.js'
import { ApiError } from './errors.js'

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * Throttles the route per client address and per account, with that scope's limits: the routes a
     * password-guessing or account-farming script hammers. Every other route (all public reads) carries no limiter
     * and pays nothing.
     */
    rateLimitScope?: RateLimitScope
  }
}

/**
 * The account a throttled request acts on (`user:<id>`, or an address with no account, `email:<address>`), or
 * undefined when the request names none: what the per-account limit counts, as the routes' owner (auth) reads it.
 */
export type AccountOf = (scope: RateLimitScope, request: FastifyRequest) => Promise<string | undefined>

/** DRF's Throttled message, with its Retry-After header. */
export function throttled(seconds: number): ApiError {
  const wait = Math.max(1, Math.ceil(seconds))
  return new ApiError(
    429,
    { detail: `Request was throttled. Expected available in ${wait} second${wait === 1 ? '' : 's'}.` },
    { 'retry-after': String(wait) },
  )
}

/** An account as a counter's key: hashed, so no email address is ever stored as a Redis key. */
const accountKey = (account: string) => createHash('sha256').update(account).digest('base64url').slice(0, 22)

/**
 * The client as a rate-limit key: its address, or for IPv6 its /64 network, which one subscriber usually holds
 * whole (one key per address would give them 2^64 budgets).
 */
export function clientKey(ip: string): string {
  if (!ip.includes(':') || !ipaddr.isValid(ip)) return ip
  const address = ipaddr.parse(ip) as ipaddr.IPv6
  if (address.isIPv4MappedAddress()) return address.toIPv4Address().toString()
  return `${address.parts.slice(0, 4).map((part) => part.toString(16)).join(':')}::/64`
}

const KEY = Symbol('rateLimitKey')
type Keyed = FastifyRequest & { [KEY]?: string }

function append<T>(existing: T | T[] | undefined, hook: T): T[] {
  return existing === undefined ? [hook] : [...[existing].flat() as T[], hook]
}

/**
 * Throttles the routes that declare a `rateLimitScope` per client address (before the body is even read) and per
 * account (`accountOf`, once the body or the signed-in user is known). Counters live in Redis when configured, so
 * the limits hold across every instance; a Redis outage lets requests through rather than failing them. Must be
 * installed before the routes.
 */
export async function installRateLimits(
  app: FastifyInstance,
  config: Pick<Config, 'rateLimit' | 'redisUrl' | 'redisPrefix' | 'rateLimitWindowSeconds' | 'rateLimits'>,
  accountOf: AccountOf,
): Promise<void> {
  if (!config.rateLimit) return
  let redis: Redis | undefined
  if (config.redisUrl) {
    redis = new Redis(config.redisUrl, {
      // Fail fast while disconnected (skipOnError then lets the request through) instead of queueing behind it.
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      commandTimeout: 500,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    })
    redis.on('error', () => {})
    app.addHook('onClose', async () => {
      redis?.disconnect()
    })
    // Counting from the first request: a command sent before the connection is up fails and is let through.
    await connectedOrNot(redis)
  }
  await app.register(rateLimit, {
    global: false,
    skipOnError: true,
    ...(redis ? { redis, nameSpace: `${config.redisPrefix}rl:` } : {}),
  })

  const window = config.rateLimitWindowSeconds * 1000
  const limiter = (
    scope: RateLimitScope,
    kind: 'ip' | 'account',
    max: number,
    key: (request: FastifyRequest) => string | undefined | Promise<string | undefined>,
  ) => {
    const check = app.createRateLimit({ max, timeWindow: window, keyGenerator: (request) => (request as Keyed)[KEY] ?? '' })
    return async (request: FastifyRequest) => {
      const value = await key(request)
      if (value === undefined) return
      ;(request as Keyed)[KEY] = `${scope}:${kind}:${value}`
      const result = await check(request)
      if (!result.isAllowed && result.isExceeded) throw throttled(result.ttlInSeconds)
    }
  }

  app.addHook('onRoute', (route) => {
    const scope = route.config?.rateLimitScope
    if (!scope) return
    const rule = config.rateLimits[scope]
    const perIp = limiter(scope, 'ip', rule.perIp, (request) => clientKey(request.ip))
    const perAccount = limiter(scope, 'account', rule.perAccount, async (request) => {
      const account = await accountOf(scope, request)
      return account === undefined ? undefined : accountKey(account)
    })
    // Route options type hooks callback-style; Fastify awaits the async ones these are.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    route.onRequest = append<onRequestHookHandler>(route.onRequest, perIp)
    // A preHandler: by then the auth guard (onRequest) has identified the user for `password`.
    // eslint-disable-next-line @typescript-eslint/no-misused-promises
    route.preHandler = append<preHandlerHookHandler>(route.preHandler, perAccount)
  })
}
