/**
 * Outages of PostgreSQL and Redis: clear 503s (never a 500, never a hang) while the database is gone, the database
 * alone serving while Redis is gone, and recovery without a restart when either comes back. The machine's real
 * services are never stopped: a dead port stands in for a server that is down, and on the real backend a TCP proxy
 * started here sits between the app and the server, to be cut and restored.
 */
import { pino } from 'pino'
import { afterAll, describe, expect, it } from 'vitest'
import type { FastifyInstance } from 'fastify'
import { buildApp } from '../src/app.js'
import { type AppContext, closeContext, createContext } from '../src/context.js'
import { createDatabase } from '../src/db/index.js'
import type { RedisCacheBackend } from '../src/cache/redis.js'
import type { Config } from '../src/config/index.js'
import { PASSWORD, createTestApp, realBackend, testConfig, testDatabase, uniqueEmail } from './helpers.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'

const DEAD_PG = 'postgres://postgres@127.0.0.1:1/storefront'
const DEAD_REDIS = 'redis://127.0.0.1:1'
const UNAVAILABLE = { detail: 'Service temporarily unavailable, try again later.' }

function quietLog(): AppContext['log'] {
  const noop = () => {}
  const log = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop, child: () => log }
  return log
}

/** An app on a database URL, without the start-up check (the database may be down from the first request on). */
async function appOn(databaseUrl: string, config: Partial<Config> = {}): Promise<{ app: FastifyInstance; ctx: AppContext; close(): Promise<void> }> {
  const database = await createDatabase({ url: databaseUrl, poolSize: 4 })
  const ctx = await createContext(testConfig(config), quietLog(), { database })
  const app = await buildApp(ctx, { logger: false })
  await app.ready()
  return { app, ctx, close: async () => (await app.close(), await closeContext(ctx)) }
}

async function eventually(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('condition not reached in time')
    await new Promise((r) => setTimeout(r, 100))
  }
}

async function timed<T>(work: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const started = Date.now()
  const value = await work()
  return { value, ms: Date.now() - started }
}

const opened: { close(): Promise<void> }[] = []
afterAll(async () => {
  await Promise.allSettled(opened.map((o) => o.close()))
})

describe('PostgreSQL unreachable', () => {
  it('answers 503 in DRF shape at once, on every route that needs it, and readiness says why', async () => {
    const down = await appOn(DEAD_PG)
    opened.push(down)
    const { app, ctx } = down
    const access = ctx.tokens.issue('access', 1, 0).token
    const inject = (method: string, url: string, body?: unknown) =>
      app.inject({
        method: method as 'GET',
        url,
        headers: { authorization: `Bearer ${access}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
        ...(body !== undefined ? { payload: JSON.stringify(body) } : {}),
      })

    for (const [method, url, body] of [
      ['POST', '/api/v1/auth/token', { email: uniqueEmail(), password: PASSWORD }],
      ['POST', '/api/v1/auth/register', { email: uniqueEmail(), password: PASSWORD }],
      ['GET', '/api/v1/me', undefined],
    ] as const) {
      const { value: res, ms } = await timed(() => inject(method, url, body))
      expect({ url, status: res.statusCode, body: res.json() }).toEqual({ url, status: 503, body: UNAVAILABLE })
      expect(res.headers['retry-after']).toBe('5')
      expect(ms).toBeLessThan(2_000)
    }

    const ready = await inject('GET', '/health/ready')
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toMatchObject({ status: 'unavailable', checks: { database: 'unavailable' } })
    expect((await inject('GET', '/health/live')).statusCode).toBe(200)

    // Whatever routes exist (other slices add theirs): never a 500 or a leaked driver message while it is down.
    const doc = (await inject('GET', '/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> }
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of Object.keys(item).filter((m) => ['get', 'post', 'put', 'patch', 'delete'].includes(m))) {
        const res = await inject(method.toUpperCase(), path.replace(/\{[^}]+\}/g, '1'), method === 'get' || method === 'delete' ? undefined : {})
        expect({ route: `${method} ${path}`, status: res.statusCode }).not.toMatchObject({ status: 500 })
        if (res.statusCode === 503 && path !== '/health/ready') expect(res.json()).toEqual(UNAVAILABLE)
        expect(res.body).not.toMatch(/ECONNREFUSED|127\.0\.0\.1:1|select |insert /i)
      }
    }
  })

  it.runIf(realBackend)('recovers without a restart when the server comes back', async () => {
    const db = await testDatabase()
    await db.database.close()
    opened.push({ close: db.drop })
    const proxy = await new TcpProxy(targetOf(db.url!, 5432)).start()
    opened.push({ close: () => proxy.cut() })
    const up = await appOn(proxy.url(db.url!))
    opened.push(up)
    const register = (email = uniqueEmail()) =>
      up.app.inject({ method: 'POST', url: '/api/v1/auth/register', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email, password: PASSWORD }) })

    const email = uniqueEmail()
    expect((await register(email)).statusCode).toBe(201)
    expect((await up.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(200)

    await proxy.cut()
    const { value: cut, ms } = await timed(() => register())
    expect(cut.statusCode).toBe(503)
    expect(cut.json()).toEqual(UNAVAILABLE)
    expect(ms).toBeLessThan(2_000)
    expect((await up.app.inject({ method: 'GET', url: '/health/ready' })).statusCode).toBe(503)

    await proxy.restore()
    await eventually(async () => (await up.app.inject({ method: 'GET', url: '/health/ready' })).statusCode === 200)
    expect((await register()).statusCode).toBe(201)
    const login = await up.app.inject({
      method: 'POST',
      url: '/api/v1/auth/token',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify({ email, password: PASSWORD }),
    })
    expect(login.statusCode).toBe(200)
  })
})

describe('Redis unreachable', () => {
  it('serves reads from the database, accepts writes, and readiness reports the cache', async () => {
    const t = await createTestApp({ config: { redisUrl: DEAD_REDIS } })
    opened.push(t)
    const u = await t.user()
    const { value: patched, ms } = await timed(() => t.request('PATCH', '/api/v1/me', { token: u.access, body: { first_name: 'Offline' } }))
    expect(patched.statusCode).toBe(200)
    expect(ms).toBeLessThan(2_000)
    expect((await t.request('GET', '/api/v1/me', { token: u.access })).json().first_name).toBe('Offline')

    // The cache falls back to the loader at once, and an invalidating write still runs and commits.
    let loads = 0
    const load = async () => JSON.stringify({ n: ++loads })
    for (let i = 0; i < 2; i++) expect(await t.ctx.cache.read('outage:key', ['outage-scope'], load)).toEqual({ body: JSON.stringify({ n: i + 1 }), hit: false })
    expect(await t.ctx.cache.invalidate(async (mark) => (await mark(['outage-scope']), 'written'))).toBe('written')

    const ready = await t.request('GET', '/health/ready')
    expect(ready.statusCode).toBe(503)
    expect(ready.json()).toMatchObject({ status: 'unavailable', checks: { database: 'ok', cache: 'unavailable' } })

    // Every public read of whatever routes exist still answers (the catalogue's cached reads among them).
    const doc = (await t.request('GET', '/openapi.json')).json() as { paths: Record<string, Record<string, unknown>> }
    const staff = await t.user({ staff: true })
    for (const path of Object.keys(doc.paths).filter((p) => !p.includes('{') && doc.paths[p]!.get && p !== '/health/ready' && !p.startsWith('/ws/'))) {
      const res = await t.request('GET', path, { token: staff.access })
      expect({ path, status: res.statusCode }).toEqual({ path, status: 200 })
    }
  })

  it('says so once at start, naming what runs degraded, keeps retrying, and says when it is back', async () => {
    const lines: { level: number; msg: string }[] = []
    const log = pino({ level: 'info' }, { write: (line: string) => void lines.push(JSON.parse(line)) })
    // On the real backend a proxy that is down now and comes back later; embedded, a dead port.
    const proxy = realBackend ? await new TcpProxy(targetOf(process.env.REDIS_URL!, 6379)).start() : undefined
    await proxy?.cut()
    if (proxy) opened.push({ close: () => proxy.cut() })
    const db = await testDatabase()
    opened.push({ close: db.drop })
    const ctx = await createContext(testConfig({ redisUrl: proxy ? proxy.url(process.env.REDIS_URL!) : DEAD_REDIS }), log, {
      database: db.database,
    })
    opened.push({ close: () => closeContext(ctx) })
    let retries = 0
    ;(ctx.cache.backend as RedisCacheBackend).connection.on('reconnecting', () => retries++)
    await eventually(async () => retries >= 3)
    const warnings = lines.filter((l) => l.level === 40 && l.msg.includes('Redis'))
    expect(warnings).toHaveLength(1)
    expect(warnings[0]!.msg).toMatch(/^Redis at 127\.0\.0\.1:\d+ is unreachable .*retrying.*shared cache.*notifications and session revocations.*rate-limit counters/)
    if (!proxy) return
    await proxy.restore()
    await eventually(async () => lines.some((l) => l.level === 30 && /^Redis at .* is reachable again/.test(l.msg)))
  })

  it.runIf(realBackend)('resumes caching when Redis comes back, without serving anything stale', async () => {
    const proxy = await new TcpProxy(targetOf(process.env.REDIS_URL!, 6379)).start()
    opened.push({ close: () => proxy.cut() })
    const t = await createTestApp({ config: { redisUrl: proxy.url(process.env.REDIS_URL!) } })
    opened.push(t)
    await eventually(async () => (await t.request('GET', '/health/ready')).statusCode === 200)

    let version = 1
    const load = async () => JSON.stringify({ version })
    const read = () => t.ctx.cache.read('outage:product', ['outage-product'], load)
    expect((await read()).hit).toBe(false)
    expect(await read()).toEqual({ body: '{"version":1}', hit: true })

    await proxy.cut()
    // A write during the outage: its invalidation cannot reach Redis.
    await t.ctx.cache.invalidate(async (mark) => {
      await mark(['outage-product'])
      version = 2
    })
    expect(await read()).toEqual({ body: '{"version":2}', hit: false })
    const u = await t.user()
    expect((await t.request('PATCH', '/api/v1/me', { token: u.access, body: { last_name: 'Cut' } })).statusCode).toBe(200)
    expect((await t.request('GET', '/health/ready')).statusCode).toBe(503)

    await proxy.restore()
    await eventually(async () => (await t.request('GET', '/health/ready')).statusCode === 200)
    // The entry cached before the outage is never served again; caching resumes with the fresh answer.
    await eventually(async () => {
      const first = await read()
      expect(first.body).toBe('{"version":2}')
      return (await read()).hit
    })
    expect(await read()).toEqual({ body: '{"version":2}', hit: true })
  })
})
