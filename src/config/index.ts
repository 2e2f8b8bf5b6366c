import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { isIP } from 'node:net'
import { join, resolve } from 'node:path'
import ipaddr from 'ipaddr.js'

export interface Config {
  env: 'development' | 'production' | 'test'
  host: string
  port: number
  databaseUrl: string | undefined
  dataDir: string
  redisUrl: string | undefined
  /** Namespaces every cache key and pub/sub channel, so several deployments (or test runs) can share one Redis. */
  redisPrefix: string
  jwtSecret: string
  accessTokenLifetime: number
  refreshTokenLifetime: number
  cacheTtlSeconds: number
  /** Bytes of finished catalogue answers each process keeps in front of the shared cache; 0: none. */
  cacheL1Bytes: number
  bodyLimit: number
  logLevel: string
  webConcurrency: number
  dbPoolSize: number
  corsOrigins: string[]
  /**
   * Which `X-Forwarded-For` hops to believe, as Fastify's `trustProxy` takes it: none, the nearest N proxies, or the
   * proxies at these addresses or networks. Never "every hop": the leftmost entries are whatever the client sent.
   */
  trustProxy: false | number | string[]
  /** argon2id memory cost in KiB; tests lower it, production keeps OWASP's 19 MiB minimum or more. */
  argon2MemoryCost: number
  /** Throttling of the credential routes; off in tests unless a test turns it on. */
  rateLimit: boolean
  /** How often the server pings an idle WebSocket; one unanswered ping and the socket is dropped. */
  wsPingIntervalMs: number
  /** Notification sockets one user may hold per instance; a new one past it closes their oldest (4429). */
  wsMaxSocketsPerUser: number
  rateLimitWindowSeconds: number
  rateLimits: Record<RateLimitScope, RateLimitRule>
  /** Longest accepted query string, bytes (414 above). */
  queryLimit: number
  /** HTTP server timeouts (ms): a whole request must arrive within `request`; an idle keep-alive socket is kept
   * `keepAlive` (longer than a load balancer's idle timeout, so the balancer closes first); a socket with no traffic
   * at all is dropped after `connection`. WebSockets are exempt from the last (ws clears it after the upgrade). */
  timeouts: { request: number; keepAlive: number; connection: number }
  /** When set, GET /metrics wants `Authorization: Bearer <it>`; unset, the metrics are public. */
  metricsToken: string | undefined
  /** Longest a service statement may run on a real PostgreSQL before it is cancelled (503); 0: no limit. */
  dbStatementTimeoutMs: number
  /** Catalogue reads that miss the cache and run at once; more wait, up to the statement timeout, then get 503. */
  readConcurrency: number
  /** Catalogue reads that miss the cache, per client address and minute (with `rateLimit` on). */
  readRateLimit: number
}

export type RateLimitScope = 'register' | 'token' | 'refresh' | 'password'

/** Requests allowed per window from one client address, and for one account (email or user) from anywhere. */
export interface RateLimitRule {
  perIp: number
  perAccount: number
}

/** Per minute by default: a person retrying a typo never meets them, a password-guessing script does at once. */
const RATE_LIMIT_DEFAULTS: Record<RateLimitScope, RateLimitRule> = {
  register: { perIp: 10, perAccount: 5 },
  token: { perIp: 10, perAccount: 5 },
  refresh: { perIp: 30, perAccount: 10 },
  password: { perIp: 10, perAccount: 5 },
}

/** A configuration error names the variable and why; main prints it as one line and exits non-zero. */
export class ConfigError extends Error {
  constructor(variable: string, reason: string) {
    super(`${variable}: ${reason}`)
    this.name = 'ConfigError'
  }
}

type Env = Record<string, string | undefined>

function int(env: Env, name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER): number {
  const raw = env[name]
  if (raw === undefined || raw === '') return fallback
  if (!/^\d+$/.test(raw.trim())) throw new ConfigError(name, `must be a whole number, got "${raw}"`)
  const value = Number(raw)
  if (value < min || value > max) throw new ConfigError(name, `must be between ${min} and ${max}, got ${value}`)
  return value
}

function url(env: Env, name: string, protocols: string[]): string | undefined {
  const raw = env[name]
  if (raw === undefined || raw === '') return undefined
  let parsed: URL
  try {
    parsed = new URL(raw)
  } catch {
    throw new ConfigError(name, `is not a valid URL`)
  }
  if (!protocols.includes(parsed.protocol)) {
    throw new ConfigError(name, `must start with ${protocols.map((p) => `${p}//`).join(' or ')}`)
  }
  return raw
}

function bool(env: Env, name: string, fallback: boolean): boolean {
  const raw = env[name]?.trim().toLowerCase()
  if (raw === undefined || raw === '') return fallback
  if (['1', 'true', 'yes', 'on'].includes(raw)) return true
  if (['0', 'false', 'no', 'off'].includes(raw)) return false
  throw new ConfigError(name, `must be true or false, got "${env[name]}"`)
}

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']

function logLevel(env: Env, fallback: string): string {
  const raw = env.LOG_LEVEL?.trim()
  if (!raw) return fallback
  if (!LOG_LEVELS.includes(raw)) throw new ConfigError('LOG_LEVEL', `must be one of ${LOG_LEVELS.join(', ')}, got "${raw}"`)
  return raw
}

/** An IP address or a DNS name (RFC 1123 labels); whether the name resolves is found out when listening. */
function host(env: Env): string {
  const raw = env.HOST?.trim()
  if (!raw) return '0.0.0.0'
  const label = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/i
  if (isIP(raw) || (raw.length <= 253 && raw.split('.').every((part) => label.test(part)))) return raw
  throw new ConfigError('HOST', `must be an IP address or a host name, got "${raw}"`)
}

/**
 * `false`, a hop count, or comma-separated proxy addresses and CIDR networks. `true` means one hop, the usual
 * single reverse proxy: trusting every hop would let a client choose its own address by sending the header itself.
 */
function trustProxy(env: Env): Config['trustProxy'] {
  const raw = env.TRUST_PROXY?.trim()
  if (!raw || ['0', 'false', 'no', 'off'].includes(raw.toLowerCase())) return false
  if (['true', 'yes', 'on'].includes(raw.toLowerCase())) return 1
  if (/^\d+$/.test(raw)) return int(env, 'TRUST_PROXY', 0, 0, 64)
  const proxies = raw.split(',').map((s) => s.trim()).filter(Boolean)
  for (const proxy of proxies) {
    const valid = proxy.includes('/') ? isCidr(proxy) : ipaddr.isValid(proxy)
    if (!valid) throw new ConfigError('TRUST_PROXY', `must be false, a hop count or proxy addresses/CIDRs, got "${proxy}"`)
  }
  return proxies
}

function isCidr(text: string): boolean {
  try {
    ipaddr.parseCIDR(text)
    return true
  } catch {
    return false
  }
}

/** In development the secret is generated once and kept beside the embedded data, so tokens survive restarts. */
function developmentSecret(dataDir: string): string {
  const file = join(dataDir, 'jwt-secret')
  try {
    return readFileSync(file, 'utf8').trim()
  } catch {
    mkdirSync(dataDir, { recursive: true })
    const secret = randomBytes(48).toString('base64url')
    writeFileSync(file, secret, { mode: 0o600 })
    return secret
  }
}

/** RATE_LIMIT_TOKEN_PER_IP, RATE_LIMIT_TOKEN_PER_ACCOUNT, ... for each scope. */
function rateLimitRules(env: Env): Record<RateLimitScope, RateLimitRule> {
  const rules = {} as Record<RateLimitScope, RateLimitRule>
  for (const [scope, fallback] of Object.entries(RATE_LIMIT_DEFAULTS) as [RateLimitScope, RateLimitRule][]) {
    const name = `RATE_LIMIT_${scope.toUpperCase()}`
    rules[scope] = {
      perIp: int(env, `${name}_PER_IP`, fallback.perIp, 1),
      perAccount: int(env, `${name}_PER_ACCOUNT`, fallback.perAccount, 1),
    }
  }
  return rules
}

function metricsToken(env: Env): string | undefined {
  const token = env.METRICS_TOKEN
  if (!token) return undefined
  if (token.length < 16 || /\s/.test(token)) throw new ConfigError('METRICS_TOKEN', 'must be at least 16 characters, without spaces')
  return token
}

export function loadConfig(env: Env = process.env): Config {
  const nodeEnv = env.NODE_ENV ?? 'development'
  if (!['development', 'production', 'test'].includes(nodeEnv)) {
    throw new ConfigError('NODE_ENV', `must be development, production or test, got "${nodeEnv}"`)
  }
  const dataDir = resolve(env.DATA_DIR || './data')
  let jwtSecret = env.JWT_SECRET
  if (jwtSecret !== undefined && jwtSecret.length > 0 && jwtSecret.length < 32) {
    throw new ConfigError('JWT_SECRET', 'must be at least 32 characters')
  }
  if (!jwtSecret) {
    if (nodeEnv === 'production') throw new ConfigError('JWT_SECRET', 'is required when NODE_ENV=production')
    jwtSecret = nodeEnv === 'test' ? randomBytes(48).toString('base64url') : developmentSecret(dataDir)
  }
  const dbPoolSize = int(env, 'DB_POOL_SIZE', 10, 1, 1000)
  return {
    env: nodeEnv as Config['env'],
    host: host(env),
    port: int(env, 'PORT', 8000, 0, 65535),
    databaseUrl: url(env, 'DATABASE_URL', ['postgres:', 'postgresql:']),
    dataDir,
    redisUrl: url(env, 'REDIS_URL', ['redis:', 'rediss:']),
    redisPrefix: env.REDIS_PREFIX ?? 'sf:',
    jwtSecret,
    accessTokenLifetime: int(env, 'ACCESS_TOKEN_LIFETIME', 300, 1),
    refreshTokenLifetime: int(env, 'REFRESH_TOKEN_LIFETIME', 86400, 1),
    cacheTtlSeconds: int(env, 'CACHE_TTL_SECONDS', 3600, 0),
    cacheL1Bytes: int(env, 'CACHE_L1_BYTES', 32 * 1024 * 1024, 0),
    bodyLimit: int(env, 'BODY_LIMIT', 1024 * 1024, 1024),
    logLevel: logLevel(env, nodeEnv === 'test' ? 'silent' : 'info'),
    webConcurrency: int(env, 'WEB_CONCURRENCY', 1, 1, 64),
    dbPoolSize,
    corsOrigins: (env.CORS_ORIGINS ?? '').split(',').map((s) => s.trim()).filter(Boolean),
    trustProxy: trustProxy(env),
    argon2MemoryCost: int(env, 'ARGON2_MEMORY_KIB', 19456, 1024),
    rateLimit: bool(env, 'RATE_LIMIT', nodeEnv !== 'test'),
    wsPingIntervalMs: int(env, 'WS_PING_INTERVAL_MS', 30_000, 10),
    wsMaxSocketsPerUser: int(env, 'WS_MAX_SOCKETS_PER_USER', 20, 1, 10_000),
    rateLimitWindowSeconds: int(env, 'RATE_LIMIT_WINDOW', 60, 1, 86_400),
    rateLimits: rateLimitRules(env),
    queryLimit: int(env, 'QUERY_LIMIT', 2048, 256, 65_536),
    metricsToken: metricsToken(env),
    timeouts: {
      request: int(env, 'REQUEST_TIMEOUT_MS', 30_000, 1_000, 3_600_000),
      // Above the 60 s idle timeout of common load balancers (AWS ALB, nginx's keepalive_timeout 75 s aside).
      keepAlive: int(env, 'KEEP_ALIVE_TIMEOUT_MS', 72_000, 1_000, 3_600_000),
      connection: int(env, 'CONNECTION_TIMEOUT_MS', 120_000, 1_000, 3_600_000),
    },
    // Well under the pool's 5 s wait for a connection, so a slow statement frees its connection before a queued
    // request gives up on getting one.
    dbStatementTimeoutMs: int(env, 'DB_STATEMENT_TIMEOUT_MS', 2_000, 0, 3_600_000),
    // Half the pool at most: the rest stays free for logins, carts, orders and cheap reads.
    readConcurrency: int(env, 'READ_CONCURRENCY', Math.max(1, Math.floor(dbPoolSize / 2)), 1, 1000),
    readRateLimit: int(env, 'READ_RATE_LIMIT', 600, 1),
  }
}
