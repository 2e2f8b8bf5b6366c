import { mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ConfigError, loadConfig } from '../src/config/index.js'
import { childEnv, runMain } from './server-process.js'

const dirs: string[] = []
const tmp = () => {
  const dir = mkdtempSync(join(tmpdir(), 'sf-config-'))
  dirs.push(dir)
  return dir
}
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

function failure(env: Record<string, string>): ConfigError {
  try {
    loadConfig({ NODE_ENV: 'test', ...env })
  } catch (err) {
    if (err instanceof ConfigError) return err
    throw err
  }
  throw new Error(`no error for ${JSON.stringify(env)}`)
}

describe('loadConfig', () => {
  it.each([
    [{ PORT: 'abc' }, 'PORT: must be a whole number, got "abc"'],
    [{ PORT: '70000' }, 'PORT: must be between 0 and 65535, got 70000'],
    [{ DATABASE_URL: 'nonsense' }, 'DATABASE_URL: is not a valid URL'],
    [{ DATABASE_URL: 'mysql://u@h/db' }, 'DATABASE_URL: must start with postgres:// or postgresql://'],
    [{ REDIS_URL: 'http://h' }, 'REDIS_URL: must start with redis:// or rediss://'],
    [{ NODE_ENV: 'production' }, 'JWT_SECRET: is required when NODE_ENV=production'],
    [{ JWT_SECRET: 'short' }, 'JWT_SECRET: must be at least 32 characters'],
    [{ NODE_ENV: 'staging' }, 'NODE_ENV: must be development, production or test, got "staging"'],
    [{ RATE_LIMIT: 'maybe' }, 'RATE_LIMIT: must be true or false, got "maybe"'],
    [{ RATE_LIMIT_TOKEN_PER_IP: '0' }, 'RATE_LIMIT_TOKEN_PER_IP: must be between 1 and 9007199254740991, got 0'],
    [{ QUERY_LIMIT: '12' }, 'QUERY_LIMIT: must be between 256 and 65536, got 12'],
    [{ BODY_LIMIT: '-1' }, 'BODY_LIMIT: must be a whole number, got "-1"'],
    [{ WS_MAX_SOCKETS_PER_USER: '0' }, 'WS_MAX_SOCKETS_PER_USER: must be between 1 and 10000, got 0'],
    [{ LOG_LEVEL: 'verbose' }, 'LOG_LEVEL: must be one of fatal, error, warn, info, debug, trace, silent, got "verbose"'],
    [{ HOST: 'exa mple' }, 'HOST: must be an IP address or a host name, got "exa mple"'],
    [{ HOST: 'http://example.com' }, 'HOST: must be an IP address or a host name, got "http://example.com"'],
    [{ TRUST_PROXY: 'banana' }, 'TRUST_PROXY: must be false, a hop count or proxy addresses/CIDRs, got "banana"'],
    [{ TRUST_PROXY: '10.0.0.0/33' }, 'TRUST_PROXY: must be false, a hop count or proxy addresses/CIDRs, got "10.0.0.0/33"'],
    [{ DB_STATEMENT_TIMEOUT_MS: 'soon' }, 'DB_STATEMENT_TIMEOUT_MS: must be a whole number, got "soon"'],
    [{ READ_RATE_LIMIT: '0' }, 'READ_RATE_LIMIT: must be between 1 and 9007199254740991, got 0'],
    [{ REQUEST_TIMEOUT_MS: '10' }, 'REQUEST_TIMEOUT_MS: must be between 1000 and 3600000, got 10'],
    [{ KEEP_ALIVE_TIMEOUT_MS: 'long' }, 'KEEP_ALIVE_TIMEOUT_MS: must be a whole number, got "long"'],
    [{ METRICS_TOKEN: 'short' }, 'METRICS_TOKEN: must be at least 16 characters, without spaces'],
    [{ CACHE_L1_BYTES: '32M' }, 'CACHE_L1_BYTES: must be a whole number, got "32M"'],
  ])('%j fails with one clear line', (env, message) => {
    const err = failure(env)
    expect(err.message).toBe(message)
    expect(err.message).not.toContain('\n')
  })

  it('has the documented defaults', () => {
    const config = loadConfig({ NODE_ENV: 'test' })
    expect(config).toMatchObject({ port: 8000, databaseUrl: undefined, redisUrl: undefined, bodyLimit: 1_048_576, queryLimit: 2048, rateLimit: false, corsOrigins: [], wsMaxSocketsPerUser: 20 })
    expect(config.timeouts).toEqual({ request: 30_000, keepAlive: 72_000, connection: 120_000 })
    expect(config.metricsToken).toBeUndefined()
    expect(config.cacheL1Bytes).toBe(33_554_432)
    expect(loadConfig({ NODE_ENV: 'test', CACHE_L1_BYTES: '0' }).cacheL1Bytes).toBe(0)
  })

  it('reads TRUST_PROXY as false, a hop count (true: one hop, never every hop) or proxy addresses', () => {
    const trust = (value: string) => loadConfig({ NODE_ENV: 'test', TRUST_PROXY: value }).trustProxy
    expect(trust('false')).toBe(false)
    expect(trust('')).toBe(false)
    expect(trust('true')).toBe(1)
    expect(trust('2')).toBe(2)
    expect(trust('10.0.0.0/8, 127.0.0.1,::1')).toEqual(['10.0.0.0/8', '127.0.0.1', '::1'])
  })

  it('accepts host names and addresses as HOST, and checks the log level', () => {
    for (const host of ['127.0.0.1', '::', 'localhost', 'api.example.com']) expect(loadConfig({ NODE_ENV: 'test', HOST: host }).host).toBe(host)
    expect(loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'debug' }).logLevel).toBe('debug')
  })

  it('generates the development secret once into DATA_DIR and reuses it', () => {
    const dir = tmp()
    const first = loadConfig({ NODE_ENV: 'development', DATA_DIR: dir })
    const second = loadConfig({ NODE_ENV: 'development', DATA_DIR: dir })
    expect(first.jwtSecret.length).toBeGreaterThanOrEqual(32)
    expect(second.jwtSecret).toBe(first.jwtSecret)
    expect(statSync(join(dir, 'jwt-secret')).mode & 0o777).toBe(0o600)
    expect(loadConfig({ NODE_ENV: 'development', DATA_DIR: tmp() }).jwtSecret).not.toBe(first.jwtSecret)
    // An explicit secret wins, and tests never write one to disk.
    expect(loadConfig({ NODE_ENV: 'development', DATA_DIR: dir, JWT_SECRET: 's'.repeat(40) }).jwtSecret).toBe('s'.repeat(40))
  })
})

describe('starting the server with a bad configuration', () => {
  const expectOneLine = (stderr: string, pattern: RegExp) => {
    const lines = stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(pattern)
  }

  it('exits non-zero with one line naming PORT', async () => {
    const result = await runMain(childEnv({ NODE_ENV: 'development', DATA_DIR: tmp(), PORT: 'abc' }))
    expect(result.code).not.toBe(0)
    expectOneLine(result.stderr, /^storefront: PORT: must be a whole number, got "abc"$/)
  })

  it('exits non-zero with one line naming LOG_LEVEL, or HOST when it cannot listen there', async () => {
    const level = await runMain(childEnv({ NODE_ENV: 'development', DATA_DIR: tmp(), LOG_LEVEL: 'verbose' }))
    expect(level.code).not.toBe(0)
    expectOneLine(level.stderr, /^storefront: LOG_LEVEL: must be one of .+, got "verbose"$/)
    const host = await runMain(childEnv({ NODE_ENV: 'development', DATA_DIR: tmp(), HOST: 'nonsense.invalid', PORT: '8123' }))
    expect(host.code).not.toBe(0)
    expectOneLine(host.stderr, /^storefront: HOST: cannot listen on nonsense\.invalid:8123 \(.*ENOTFOUND.*\)$/)
  })

  it('exits non-zero with one line naming JWT_SECRET in production', async () => {
    const result = await runMain(childEnv({ NODE_ENV: 'production', DATA_DIR: tmp() }))
    expect(result.code).not.toBe(0)
    expectOneLine(result.stderr, /^storefront: JWT_SECRET: is required when NODE_ENV=production$/)
  })

  it('exits non-zero with one line naming DATABASE_URL when it is nonsense or unreachable', async () => {
    const nonsense = await runMain(childEnv({ NODE_ENV: 'development', DATA_DIR: tmp(), DATABASE_URL: 'nonsense' }))
    expect(nonsense.code).not.toBe(0)
    expectOneLine(nonsense.stderr, /^storefront: DATABASE_URL: is not a valid URL$/)
    const started = Date.now()
    const unreachable = await runMain(
      childEnv({ NODE_ENV: 'development', DATA_DIR: tmp(), DATABASE_URL: 'postgres://postgres@127.0.0.1:1/x' }),
    )
    expect(unreachable.code).not.toBe(0)
    expectOneLine(unreachable.stderr, /^storefront: DATABASE_URL: cannot connect \(.+\)$/)
    expect(Date.now() - started).toBeLessThan(20_000)
  })
})
