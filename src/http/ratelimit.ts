import { createHash } from 'node:crypto'
import type { FastifyInstance, FastifyRequest, RouteOptions, onRequestHookHandler, preHandlerHookHandler } from 'fastify'
import rateLimit from '@fastify/rate-limit'
import { Redis } from 'ioredis'
import ipaddr from 'ipaddr.js'
import { findUserByEmail } from '../auth/accounts.js'
import type { AppContext } from '../context.js'
import type { RateLimitScope } from '../config/index.js'
import { ApiError } from './errors.js'

/**
 * The routes a password-guessing or account-farming script hammers. A route may also name its scope itself with
 * `config: { rateLimitScope }`; every other route (all public reads) carries no limiter and pays nothing.
 */
const SCOPED_ROUTES: Record<string, RateLimitScope> = {
  'POST /api/v1/auth/register': 'register',
  'POST /api/v1/auth/token': 'token',
  'POST /api/v1/auth/token/refresh': 'refresh',
  'POST /api/v1/me/password': 'password',
}

/** Older spellings of a scope used in route configs. */
const ALIASES: Record<string, RateLimitScope> = { credentials: 'token' }

/** DRF's Throttled message, with its Retry-After header. */
export function throttled(seconds: number): ApiError {
  const wait = Math.max(1, Math.ceil(seconds))
  return new ApiError(
    429,
    { detail: `Request was throttled. Expected available in ${wait} second${wait === 1 ? '' : 's'}.` },
    { 'retry-after': String(wait) },
  )
}

/**
 * The account a request acts on, hashed so no email address is ever stored as a Redis key. A login's email is
 * resolved to its account the way login itself resolves it (PostgreSQL's lower(), which folds more than
 * JavaScript's toLowerCase(): `İ` is `i` to it), so no spelling of an address gets a throttle of its own; only an
 * address with no account is keyed by its text. A registration is keyed by the address it asks for, account or not.
 */
async function accountOf(ctx: AppContext, scope: RateLimitScope, request: FastifyRequest): Promise<string | undefined> {
  const body = request.body as Record<string, unknown> | null | undefined
  let account: string | undefined
  if (scope === 'password') account = request.user ? `user:${request.user.id}` : undefined
  else if (scope === 'refresh') {
    const claims = typeof body?.refresh === 'string' ? ctx.tokens.verify(body.refresh, 'refresh') : null
    account = claims ? `user:${claims.user_id}` : undefined
  } else if (typeof body?.email === 'string') {
    const user = scope === 'token' ? await findUserByEmail(ctx.db, body.email) : undefined
    account = user ? `user:${user.id}` : `email:${body.email.trim().toLowerCase()}`
  }
  return account === undefined ? undefined : createHash('sha256').update(account).digest('base64url').slice(0, 22)
}

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

function scopeOf(route: RouteOptions): RateLimitScope | undefined {
  const declared = (route.config as { rateLimitScope?: string } | undefined)?.rateLimitScope
  if (declared) return ALIASES[declared] ?? (declared as RateLimitScope)
  const methods = [route.method].flat()
  for (const method of methods) {
    const scope = SCOPED_ROUTES[`${method} ${route.url.replace(/\/$/, '')}`]
    if (scope) return scope
  }
  return undefined
}

const KEY = Symbol('rateLimitKey')
type Keyed = FastifyRequest & { [KEY]?: string }

function append<T>(existing: T | T[] | undefined, hook: T): T[] {
  return existing === undefined ? [hook] : [...[existing].flat() as T[], hook]
}

/**
 * Throttles the credential routes per client address (before the body is even read) and per account (once the
 * body or the signed-in user is known). Counters live in Redis when configured, so the limits hold across every
 * instance; a Redis outage lets requests through rather than failing them. Must be installed before the routes.
 */
export async function installRateLimits(app: FastifyInstance, ctx: AppContext): Promise<void> {
  const { config } = ctx
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
    const scope = scopeOf(route)
    if (!scope) return
    const rule = config.rateLimits[scope]
    const perIp = limiter(scope, 'ip', rule.perIp, (request) => clientKey(request.ip))
    const perAccount = limiter(scope, 'account', rule.perAccount, (request) => accountOf(ctx, scope, request))
    route.onRequest = append<onRequestHookHandler>(route.onRequest as never, perIp as onRequestHookHandler)
    // A preHandler: by then the auth guard (onRequest) has identified the user for `password`.
    route.preHandler = append<preHandlerHookHandler>(route.preHandler as never, perAccount as preHandlerHookHandler)
  })
}
