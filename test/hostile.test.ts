/**
 * Hostile input and abuse (issue 12): NUL bytes and lone surrogates, unknown keys and deep nesting, expensive
 * queries, spoofed proxies, lookalike letters, oversized frames. Each gets a clear 4xx or a fair share: never a 500,
 * stored junk or an outage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eq, sql } from 'drizzle-orm'
import pg from 'pg'
import { Redis } from 'ioredis'
import { WebSocket } from 'ws'
import { orders, products, users } from '../src/db/schema.js'
import { loadConfig } from '../src/config/index.js'
import { MemoryCacheBackend } from '../src/cache/memory.js'
import { serializeError } from '../src/http/logging.js'
import { type TestApp, type TestUser, createTestApp, realBackend, uniqueEmail } from './helpers.js'
import { addToCart, makeProduct, stockOf } from './orders-fixtures.js'

let t: TestApp
let user: TestUser
let staff: TestUser
beforeAll(async () => {
  t = await createTestApp({ logs: true })
  user = await t.user()
  staff = await t.user({ staff: true })
})
afterAll(async () => {
  await t?.close()
})

const NUL = 'Null characters are not allowed.'
const ADDRESS_KEYS = ['city', 'country', 'line1', 'line2', 'postal_code', 'state']

/** A body sent exactly as written (JSON escapes such as \ud800 reach the server as they are). */
const raw = (method: string, url: string, payload: string, token?: string) =>
  t.app.inject({
    method: method as 'POST',
    url,
    payload,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  })

describe('NUL characters and lone surrogates', () => {
  it('refuses a NUL in any body field with DRF’s message on that field, before anything is stored', async () => {
    const login = await t.request('POST', '/api/v1/auth/token', { body: { email: 'a\u0000@example.com', password: 'x' } })
    expect([login.statusCode, login.json()]).toEqual([400, { email: [NUL] }])

    const email = uniqueEmail()
    const register = await t.request('POST', '/api/v1/auth/register', { body: { email, password: 'Sturdy-Passphrase-42', first_name: 'A\u0000' } })
    expect([register.statusCode, register.json()]).toEqual([400, { first_name: [NUL] }])
    expect(await t.ctx.db.select().from(users).where(eq(users.email, email))).toEqual([])

    const name = await t.request('PATCH', '/api/v1/me', { token: user.access, body: { first_name: 'Ada\u0000' } })
    expect([name.statusCode, name.json()]).toEqual([400, { first_name: [NUL] }])
    const city = await t.request('PATCH', '/api/v1/me', { token: user.access, body: { address: { city: 'X\u0000' } } })
    expect([city.statusCode, city.json()]).toEqual([400, { address: { city: [NUL] } }])

    const category = await t.request('POST', '/api/v1/categories', { token: staff.access, body: { name: 'Tools\u0000' } })
    expect([category.statusCode, category.json()]).toEqual([400, { name: [NUL] }])
  })

  it('refuses a NUL in a search or filter value with a 400 on that parameter', async () => {
    for (const [url, token, field] of [
      ['/api/v1/products?search=%00', undefined, 'search'],
      ['/api/v1/products?search=lamp%00', undefined, 'search'],
      ['/api/v1/products?category=1&category=%00', undefined, 'category'],
      ['/api/v1/users?search=%00', staff.access, 'search'],
      ['/api/v1/orders?status=%00', user.access, 'status'],
    ] as const) {
      const res = await t.request('GET', url, token ? { token } : {})
      expect(res.statusCode, url).toBe(400)
      expect(res.json()[field], url).toContain(NUL)
    }
  })

  it('refuses a lone surrogate with Django’s message, and keeps a real pair and other control characters', async () => {
    const high = await raw('PATCH', '/api/v1/me', '{"first_name": "a\\ud800b"}', user.access)
    expect([high.statusCode, high.json()]).toEqual([400, { first_name: ['Surrogate characters are not allowed: U+D800.'] }])
    const low = await raw('PATCH', '/api/v1/me', '{"address": {"line1": "\\udfff"}}', user.access)
    expect([low.statusCode, low.json()]).toEqual([400, { address: { line1: ['Surrogate characters are not allowed: U+DFFF.'] } }])

    const pair = await raw('PATCH', '/api/v1/me', '{"first_name": "\\ud83d\\ude00", "last_name": "tab\\tbell\\u0007del\\u007f"}', user.access)
    expect(pair.statusCode).toBe(200)
    expect(pair.json()).toMatchObject({ first_name: '😀', last_name: 'tab\tbell\u0007del\u007f' })
    expect((await t.request('GET', '/api/v1/me', { token: user.access })).json().first_name).toBe('😀')
  })

  it('still refuses prototype poisoning', async () => {
    const res = await raw('PATCH', '/api/v1/me', '{"__proto__": {"is_staff": true}}', user.access)
    expect(res.statusCode).toBe(400)
    expect(({} as Record<string, unknown>).is_staff).toBeUndefined()
  })
})

describe('unknown keys and deep nesting', () => {
  it('drops unknown keys at any depth: the profile and the orders copied from it hold only the address fields', async () => {
    const buyer = await t.user()
    const res = await t.request('PATCH', '/api/v1/me', {
      token: buyer.access,
      body: { first_name: 'Ada', is_staff: true, address: { city: 'London', junk: 'y'.repeat(10_000), deeper: { a: { b: [1, 2] } } } },
    })
    expect(res.statusCode).toBe(200)
    expect(Object.keys(res.json().address).sort()).toEqual(ADDRESS_KEYS)
    expect(res.json().is_staff).toBe(false)
    const [stored] = await t.ctx.db.select({ address: users.address }).from(users).where(eq(users.id, buyer.id))
    expect(Object.keys(stored!.address).sort()).toEqual(ADDRESS_KEYS.filter((k) => k in stored!.address))
    expect(JSON.stringify(stored)).not.toContain('junk')

    const product = await makeProduct(t)
    await addToCart(t, buyer, product.id)
    const fromProfile = await t.request('POST', '/api/v1/orders', { token: buyer.access, body: {} })
    expect(fromProfile.statusCode).toBe(201)
    await addToCart(t, buyer, product.id)
    const given = await t.request('POST', '/api/v1/orders', {
      token: buyer.access,
      body: { shipping_address: { line1: '1 Main St', city: 'Springfield', postal_code: '62701', country: 'US', extra: { x: 1 } }, note: 'hi' },
    })
    expect(given.statusCode).toBe(201)
    const rows = await t.ctx.db.select({ address: orders.shippingAddress }).from(orders).where(eq(orders.userId, buyer.id))
    expect(rows).toHaveLength(2)
    for (const row of rows) expect(Object.keys(row.address).every((k) => ADDRESS_KEYS.includes(k))).toBe(true)
  })

  it('refuses a body nested deeper than any schema with a 400, before parsing it', async () => {
    const depth = 5_000
    const deep = `{"address": ${'{"a": '.repeat(depth)}1${'}'.repeat(depth)}}`
    const res = await raw('PATCH', '/api/v1/me', deep, user.access)
    expect([res.statusCode, res.json()]).toEqual([400, { detail: 'JSON parse error - nested deeper than 10 levels.' }])
    const arrays = await raw('POST', '/api/v1/auth/token', `${'['.repeat(100_000)}${']'.repeat(100_000)}`)
    expect(arrays.statusCode).toBe(400)
    // Brackets inside strings are text, not nesting.
    const text = await t.request('PATCH', '/api/v1/me', { token: user.access, body: { last_name: '[[[[[[[[[[[[{{{{{{{{{{{{' } })
    expect(text.statusCode).toBe(200)
  })

  it('states additionalProperties: false on every object schema of the OpenAPI document, and bounds every body string', async () => {
    const doc = (await t.request('GET', '/openapi.json')).json()
    const open: string[] = []
    const unbounded: string[] = []
    const walk = (schema: Record<string, any>, where: string, body: boolean) => {
      const pending: [Record<string, any>, string][] = [[schema, where]]
      for (let item = pending.pop(); item; item = pending.pop()) {
        const [node, at] = item
        // A map (its values typed by an additionalProperties schema) is not a closed object, and says so.
        const isMap = typeof node.additionalProperties === 'object' || node.patternProperties
        if ((node.type === 'object' || node.properties) && node.additionalProperties !== false && !isMap) open.push(at)
        if (body && node.type === 'string' && node.maxLength === undefined && !node.enum) unbounded.push(at)
        for (const [name, child] of Object.entries(node.properties ?? {})) pending.push([child as Record<string, any>, `${at}.${name}`])
        if (node.items) pending.push([node.items, `${at}[]`])
        for (const key of ['anyOf', 'oneOf', 'allOf']) for (const [i, child] of (node[key] ?? []).entries()) pending.push([child, `${at}.${key}${i}`])
      }
    }
    let bodies = 0
    for (const [path, item] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
      for (const [method, op] of Object.entries(item)) {
        const body = op.requestBody?.content?.['application/json']?.schema
        if (body) {
          bodies++
          walk(body, `${method} ${path} body`, true)
        }
        for (const [status, response] of Object.entries(op.responses ?? {}) as [string, any][]) {
          const schema = response.content?.['application/json']?.schema
          if (schema) walk(schema, `${method} ${path} ${status}`, false)
        }
      }
    }
    expect(bodies).toBeGreaterThan(10)
    expect(open).toEqual([])
    expect(unbounded).toEqual([])
  })
})

describe('expensive reads', () => {
  it('refuses a search made only of terms too short for the trigram index', async () => {
    const message = { search: ['Ensure at least one search term has 3 or more letters or digits in a row.'] }
    for (const search of ['a', 'a b c', 'ab,cd', 'a-b-c', '%_%']) {
      const res = await t.request('GET', `/api/v1/products?search=${encodeURIComponent(search)}`)
      expect([search, res.statusCode, res.json()]).toEqual([search, 400, message])
    }
    for (const search of ['lamp', 'a lamp', 'x 100', '   ']) {
      expect((await t.request('GET', `/api/v1/products?search=${encodeURIComponent(search)}`)).statusCode, search).toBe(200)
    }
  })

  describe('per client address', () => {
    let r: TestApp
    beforeAll(async () => {
      r = await createTestApp({ config: { rateLimit: true, readRateLimit: 3, trustProxy: loadConfig({ NODE_ENV: 'test', TRUST_PROXY: 'true' }).trustProxy } })
    })
    afterAll(async () => {
      await r?.close()
    })
    const get = (url: string, headers: Record<string, string>, remoteAddress = '10.0.0.2') => r.app.inject({ method: 'GET', url, headers, remoteAddress })

    it('limits reads that miss the cache, never hits, and keys on the address the nearest proxy saw', async () => {
      const client = { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' }
      const urls = ['/api/v1/products?page_size=1', '/api/v1/products?page_size=2', '/api/v1/categories?page_size=3']
      for (const url of urls) {
        const res = await get(url, client)
        expect([res.statusCode, res.headers['x-cache']]).toEqual([200, 'MISS'])
      }
      // The client writes anything it likes in front; the proxy appended the address it really came from.
      const spoofed = await get('/api/v1/products?page_size=4', { 'x-forwarded-for': '192.0.2.99, 203.0.113.7' })
      expect(spoofed.statusCode).toBe(429)
      expect(Number(spoofed.headers['retry-after'])).toBeGreaterThanOrEqual(1)
      expect(spoofed.json().detail).toMatch(/^Request was throttled\. Expected available in \d+ seconds?\.$/)
      // Hits cost nothing, and other clients are unaffected.
      for (let i = 0; i < 10; i++) {
        const hit = await get(urls[0]!, client)
        expect([hit.statusCode, hit.headers['x-cache']]).toEqual([200, 'HIT'])
      }
      expect((await get('/api/v1/products?page_size=5', { 'x-forwarded-for': '203.0.113.8' })).statusCode).toBe(200)
    })
  })

  it('keys the per-account login throttle on the account the database finds, whatever the spelling', async () => {
    const r = await createTestApp({
      config: { rateLimit: true, rateLimits: { ...loadConfig({ NODE_ENV: 'test' }).rateLimits, token: { perIp: 100, perAccount: 3 } } },
    })
    try {
      const email = uniqueEmail('ilse')
      const registered = await r.request('POST', '/api/v1/auth/register', { body: { email, password: 'Sturdy-Passphrase-42' } })
      expect(registered.statusCode).toBe(201)
      // PostgreSQL's lower() reads İ (U+0130) as i: the lookalike spelling is the same account.
      const lookalike = email.replace(/^i/, 'İ')
      let n = 0
      const login = (spelling: string, password: string) =>
        r.app.inject({ method: 'POST', url: '/api/v1/auth/token', remoteAddress: `10.9.0.${++n}`, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ email: spelling, password }) })
      expect((await login(lookalike, 'Sturdy-Passphrase-42')).statusCode).toBe(200)
      expect((await login(email, 'Wrong-Guess-1')).statusCode).toBe(401)
      expect((await login(lookalike, 'Wrong-Guess-2')).statusCode).toBe(401)
      expect((await login(lookalike, 'Sturdy-Passphrase-42')).statusCode).toBe(429)
      expect((await login(email.toUpperCase(), 'Sturdy-Passphrase-42')).statusCode).toBe(429)
    } finally {
      await r.close()
    }
  })

  it('logs an oversized WebSocket frame at info at most, without a stack', async () => {
    const w = await createTestApp({ listen: true, logs: true })
    try {
      const u = await w.user()
      const ws = new WebSocket(`${w.url.replace('http', 'ws')}/ws/notifications`, { headers: { authorization: `Bearer ${u.access}` } })
      const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)))
      ws.on('error', () => {})
      await new Promise((resolve) => ws.once('open', resolve))
      ws.send('x'.repeat(100 * 1024))
      expect([1006, 1009]).toContain(await closed)
      const deadline = Date.now() + 5_000
      while (!w.logs.some((l) => JSON.stringify(l).includes('Max payload size exceeded')) && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const entries = w.logs.filter((l) => JSON.stringify(l).includes('Max payload size exceeded'))
      expect(entries.length).toBeGreaterThan(0)
      for (const entry of entries) {
        expect(entry.level as number).toBeLessThanOrEqual(30)
        expect(JSON.stringify(entry)).not.toContain('"stack"')
      }
      expect(w.logs.filter((l) => (l.level as number) >= 50)).toEqual([])
    } finally {
      await w.close()
    }
  })
})

describe.runIf(realBackend)('one client cannot take the service down (real PostgreSQL)', () => {
  let r: TestApp
  let locker: pg.Client
  beforeAll(async () => {
    r = await createTestApp({ logs: true, config: { readConcurrency: 1, dbStatementTimeoutMs: 1_500, cacheTtlSeconds: 0 } })
    locker = new pg.Client({ connectionString: (r as TestApp & { dbUrl: string }).dbUrl })
    await locker.connect()
  })
  afterAll(async () => {
    await locker?.end()
    await r?.close()
  })

  it('queues expensive reads in bounded slots and cuts a statement past the timeout: 503 with Retry-After, never a 500', async () => {
    const reader = await r.user()
    const term = `needle${Date.now().toString(36)}`
    // Every read of the products table now waits for this lock: a list query that takes as long as it likes.
    await locker.query('BEGIN')
    await locker.query('LOCK TABLE products IN ACCESS EXCLUSIVE MODE')
    try {
      const slow = r.request('GET', `/api/v1/products?search=${term}`)
      const queued = r.request('GET', '/api/v1/products?in_stock=true')
      let settled = false
      void Promise.allSettled([slow, queued]).then(() => (settled = true))
      // Meanwhile a cheap read, which needs a pooled connection but no slot, answers, and so does readiness.
      const cheap = await r.request('GET', '/api/v1/me', { token: reader.access })
      expect(cheap.statusCode).toBe(200)
      const ready = await r.request('GET', '/health/ready')
      expect([ready.statusCode, ready.json().checks.database]).toEqual([200, 'ok'])
      expect(settled).toBe(false)
      for (const res of await Promise.all([slow, queued])) {
        expect(res.statusCode).toBe(503)
        expect(res.headers['retry-after']).toBe('5')
        expect(res.json()).toEqual({ detail: 'Service temporarily unavailable, try again later.' })
      }
    } finally {
      await locker.query('ROLLBACK')
    }
    // The cancelled statement was logged, without its parameters (the access log line has the URL, as it should).
    const logged = JSON.stringify(r.logs.filter((entry) => entry.err))
    expect(logged).toContain('57014')
    expect(logged).not.toContain(term)
  })

  it('reports the database ready while every pooled connection is busy', async () => {
    const release: (() => void)[] = []
    const held = Array.from({ length: 20 }, () =>
      r.ctx.db.transaction(async (tx) => {
        await tx.execute(sql`SELECT 1`)
        await new Promise<void>((resolve) => release.push(resolve))
      }),
    )
    try {
      const name = new URL((r as TestApp & { dbUrl: string }).dbUrl).pathname.slice(1)
      const deadline = Date.now() + 10_000
      for (;;) {
        const { rows } = await locker.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1 AND state = 'idle in transaction'`,
          [name],
        )
        if (rows[0]!.n >= 20) break
        if (Date.now() > deadline) throw new Error('the pool was not exhausted')
        await new Promise((resolve) => setTimeout(resolve, 20))
      }
      const ready = await r.request('GET', '/health/ready')
      expect([ready.statusCode, ready.json()]).toEqual([200, { status: 'ok', checks: { database: 'ok', cache: 'ok', pubsub: 'ok' } }])
    } finally {
      for (const done of release) done()
      await Promise.all(held)
    }
  })

  it('gives every Redis key it writes a lifetime', async () => {
    const c = await createTestApp({ config: { cacheTtlSeconds: 600 } })
    try {
      const product = await makeProduct(c)
      const buyer = await c.user()
      for (const url of ['/api/v1/products', `/api/v1/products/${product.id}`, '/api/v1/categories', `/api/v1/products?category=${product.id}&in_stock=true`]) {
        expect((await c.request('GET', url)).statusCode).toBe(200)
      }
      await addToCart(c, buyer, product.id)
      expect((await c.request('POST', '/api/v1/orders', { token: buyer.access, body: {} })).statusCode).toBe(201)
      expect((await c.request('GET', '/api/v1/products')).statusCode).toBe(200)
      const redis = new Redis(process.env.REDIS_URL!)
      try {
        const keys: string[] = []
        let cursor = '0'
        do {
          const [next, found] = await redis.scan(cursor, 'MATCH', `${c.ctx.config.redisPrefix}*`, 'COUNT', 1000)
          cursor = next
          keys.push(...found)
        } while (cursor !== '0')
        expect(keys.length).toBeGreaterThan(5)
        const forever: string[] = []
        for (const key of keys) if ((await redis.ttl(key)) === -1) forever.push(key)
        expect(forever).toEqual([])
      } finally {
        redis.disconnect()
      }
    } finally {
      await c.close()
    }
  })
})

describe('smaller ones', () => {
  it('answers a cancellation whose restock would overflow the stock with 409, changing nothing', async () => {
    const buyer = await t.user()
    const product = await makeProduct(t, { stock: 5 })
    await addToCart(t, buyer, product.id, 2)
    const placed = await t.request('POST', '/api/v1/orders', { token: buyer.access, body: {} })
    expect(placed.statusCode).toBe(201)
    await t.ctx.db.update(products).set({ stock: 2_147_483_646 }).where(eq(products.id, product.id))
    const res = await t.request('POST', `/api/v1/orders/${placed.json().id}/cancel`, { token: buyer.access })
    expect(res.statusCode).toBe(409)
    expect(res.json().detail).toMatch(/Cannot cancel/)
    expect(await stockOf(t, product.id)).toBe(2_147_483_646)
    expect((await t.request('GET', `/api/v1/orders/${placed.json().id}`, { token: buyer.access })).json().status).toBe('pending')
  })

  it('never logs a failed statement’s parameters or the row values PostgreSQL reports', async () => {
    const hash = `$argon2id$v=19$secret-${Date.now()}`
    let failure: unknown
    try {
      await t.ctx.db.insert(users).values({ email: user.email, password: hash })
    } catch (err) {
      failure = err
    }
    expect(failure).toBeDefined()
    const serialized = serializeError(failure) as { message: string }
    const logged = JSON.stringify(serialized)
    expect(logged).toContain('23505')
    expect(serialized.message).toContain('insert into "users"')
    expect(logged).not.toContain(hash)
    expect(logged).not.toContain(user.email)
  })

  it('counts every API route in /metrics by route pattern', async () => {
    const product = await makeProduct(t)
    expect((await t.request('GET', `/api/v1/products/${product.id}`)).statusCode).toBe(200)
    expect((await t.request('GET', '/api/v1/me', { token: user.access })).statusCode).toBe(200)
    const metrics = (await t.request('GET', '/metrics')).body
    expect(metrics).toMatch(/^http_requests_total\{method="GET",route="\/api\/v1\/products\/:id",status="200"\} [1-9]/m)
    expect(metrics).toMatch(/^http_requests_total\{method="GET",route="\/api\/v1\/me",status="200"\} [1-9]/m)
    expect(metrics).toMatch(/^http_request_duration_seconds_count\{method="GET",route="\/api\/v1\/me"\} [1-9]/m)
  })

  it('treats another Authorization scheme than Bearer as no credentials', async () => {
    for (const header of ['Basic dXNlcjpwYXNz', `JWT ${user.access}`, 'Token abc']) {
      const res = await t.request('GET', '/api/v1/me', { headers: { authorization: header } })
      expect([header, res.statusCode, res.json()]).toEqual([header, 401, { detail: 'Authentication credentials were not provided.' }])
    }
    const junk = await t.request('GET', '/api/v1/me', { headers: { authorization: 'Bearer junk' } })
    expect(junk.json().code).toBe('token_not_valid')
  })

  it('refuses numbers past the database’s integers before they reach SQL', async () => {
    for (const user_id of [2 ** 31, 2 ** 40, 2 ** 64]) {
      const res = await t.request('POST', '/api/v1/auth/sessions/revoke', { token: staff.access, body: { user_id } })
      expect([res.statusCode, res.json()]).toEqual([400, { user_id: ['Ensure this value is less than or equal to 2147483647.'] }])
    }
  })

  it('reads ids in paths as digits only', async () => {
    const buyer = await t.user()
    const product = await makeProduct(t)
    await addToCart(t, buyer, product.id)
    const id = (await t.request('POST', '/api/v1/orders', { token: buyer.access, body: {} })).json().id as number
    expect((await t.request('GET', `/api/v1/orders/${id}`, { token: buyer.access })).statusCode).toBe(200)
    for (const spelling of [`%20${id}`, `${id}%20`, `+${id}`, `${id}.0`, `${id}e0`, `0x${id.toString(16)}`]) {
      const res = await t.request('GET', `/api/v1/orders/${spelling}`, { token: buyer.access })
      expect([spelling, res.statusCode, res.json()]).toEqual([spelling, 404, { detail: 'Not found.' }])
    }
    expect((await t.request('GET', `/api/v1/products/%20${product.id}`)).statusCode).toBe(404)
  })

  it('bounds the in-process cache’s generations', async () => {
    const backend = new MemoryCacheBackend(10, 40)
    for (let i = 0; i < 1_000; i++) {
      const scopes = ['epoch', `p:${i}`, `c:${i % 7}`]
      const found = await backend.lookup(`p:${i}`, scopes)
      await backend.fill(`p:${i}`, scopes, found.stamp!, `product ${i}`, 60)
    }
    expect(backend.generationCount).toBeLessThanOrEqual(40)
    // What was just filled is still found: its generations were kept young.
    expect((await backend.lookup('p:999', ['epoch', 'p:999', 'c:5'])).value).toBe('product 999')
  })
})
