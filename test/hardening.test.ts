import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { createSigner } from 'fast-jwt'
import { loadConfig } from '../src/config/index.js'
import { PASSWORD, type TestApp, createTestApp, realBackend, uniqueEmail } from './helpers.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

const json = { 'content-type': 'application/json' }

describe('security headers', () => {
  it('gives every API answer a locked-down policy and the usual headers', async () => {
    for (const url of ['/health/live', '/api/v1/me', '/api/v1/nothing']) {
      const res = await t.request('GET', url)
      expect(res.headers['content-security-policy']).toBe("default-src 'none';frame-ancestors 'none'")
      expect(res.headers['x-content-type-options']).toBe('nosniff')
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN')
      expect(res.headers['strict-transport-security']).toMatch(/max-age=\d+/)
      expect(res.headers['referrer-policy']).toBe('no-referrer')
      expect(res.headers['x-powered-by']).toBeUndefined()
    }
  })

  it('relaxes the policy only as far as the docs page needs, and the page still loads', async () => {
    const page = await t.request('GET', '/docs/')
    expect(page.statusCode).toBe(200)
    const csp = page.headers['content-security-policy'] as string
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("default-src 'self'")
    expect(csp).not.toContain('upgrade-insecure-requests')
    // Every script the page loads is a same-origin file the policy allows, and each one is served.
    const scripts = [...page.body.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)]
    expect(scripts.length).toBeGreaterThan(0)
    for (const [, attrs, inline] of scripts) {
      expect(inline!.trim()).toBe('')
      const src = /src="([^"]+)"/.exec(attrs!)![1]!
      expect(src.startsWith('/') || src.startsWith('.')).toBe(true)
      const asset = await t.request('GET', new URL(src, 'http://x/docs/').pathname)
      expect(asset.statusCode).toBe(200)
    }
    expect((await t.request('GET', '/docs/json')).statusCode).toBe(200)
  })
})

describe('CORS', () => {
  it('sends no CORS headers when no origin is configured', async () => {
    const res = await t.request('GET', '/health/live', { headers: { origin: 'https://evil.example' } })
    expect(res.headers['access-control-allow-origin']).toBeUndefined()
  })

  it('answers preflights for configured origins only', async () => {
    const c = await createTestApp({ config: { corsOrigins: ['https://shop.example'] } })
    try {
      const preflight = await c.request('OPTIONS', '/api/v1/me', {
        headers: { origin: 'https://shop.example', 'access-control-request-method': 'PATCH', 'access-control-request-headers': 'authorization,content-type' },
      })
      expect(preflight.statusCode).toBe(204)
      expect(preflight.headers['access-control-allow-origin']).toBe('https://shop.example')
      expect(preflight.headers['access-control-allow-methods']).toContain('PATCH')
      expect(String(preflight.headers['access-control-allow-headers']).toLowerCase()).toContain('authorization')
      const simple = await c.request('GET', '/health/live', { headers: { origin: 'https://shop.example' } })
      expect(simple.headers['access-control-allow-origin']).toBe('https://shop.example')
      expect(simple.headers['access-control-expose-headers']).toContain('retry-after')
      const other = await c.request('GET', '/health/live', { headers: { origin: 'https://evil.example' } })
      expect(other.headers['access-control-allow-origin']).toBeUndefined()
    } finally {
      await c.close()
    }
  })

  it('reads CORS_ORIGINS as a comma-separated list', () => {
    expect(loadConfig({ NODE_ENV: 'test', CORS_ORIGINS: ' https://a.example, https://b.example ,' }).corsOrigins).toEqual([
      'https://a.example',
      'https://b.example',
    ])
  })
})

describe('request limits', () => {
  it('refuses a query string over the limit with 414 in DRF shape', async () => {
    const limit = t.ctx.config.queryLimit
    expect(limit).toBe(2048)
    const over = await t.request('GET', `/health/live?q=${'a'.repeat(limit)}`)
    expect(over.statusCode).toBe(414)
    expect(over.json()).toEqual({ detail: 'Query string is too long (at most 2048 bytes).' })
    const under = await t.request('GET', `/health/live?q=${'a'.repeat(limit - 2)}`)
    expect(under.statusCode).toBe(200)
    // A long path without a query string is the router's business (404), not this limit's.
    expect((await t.request('GET', `/api/v1/${'p'.repeat(limit + 10)}`)).statusCode).toBe(404)
  })

  it('answers a URL that cannot be decoded 400 in DRF shape', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/api/v1/%zz' })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ detail: 'Malformed request URL.' })
  })

  it('echoes a well-formed request id and replaces a junk one', async () => {
    const junk = await t.request('GET', '/health/live', { headers: { 'x-request-id': `<script>${'x'.repeat(300)}` } })
    expect(junk.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
    const fine = await t.request('GET', '/health/live', { headers: { 'x-request-id': 'trace-42.a:b' } })
    expect(fine.headers['x-request-id']).toBe('trace-42.a:b')
  })
})

describe('JWT pinning', () => {
  const sign = (payload: object, algorithm: 'HS256' | 'HS512' = 'HS256') =>
    createSigner({ key: t.ctx.config.jwtSecret, algorithm, expiresIn: 60_000 })(payload)

  it('accepts a well-formed access token signed by this server (control)', async () => {
    const u = await t.user()
    const token = sign({ token_type: 'access', user_id: u.id, jti: 'j1', ver: 0 })
    expect((await t.request('GET', '/api/v1/me', { token })).statusCode).toBe(200)
  })

  it('refuses alg none, another HMAC algorithm, a refresh token as access, and missing claims', async () => {
    const u = await t.user()
    const good = { token_type: 'access', user_id: u.id, jti: 'j2', ver: 0 }
    const none = `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${sign(good).split('.')[1]}.`
    const tokens = {
      none,
      hs512: sign(good, 'HS512'),
      refreshAsAccess: u.refresh,
      wrongType: sign({ ...good, token_type: 'id' }),
      noType: sign({ user_id: u.id, jti: 'j3', ver: 0 }),
      noUser: sign({ token_type: 'access', jti: 'j4', ver: 0 }),
      noJti: sign({ token_type: 'access', user_id: u.id, ver: 0 }),
      stringUser: sign({ ...good, user_id: String(u.id) }),
      noExp: createSigner({ key: t.ctx.config.jwtSecret, algorithm: 'HS256' })(good),
    }
    for (const [name, token] of Object.entries(tokens)) {
      const res = await t.request('GET', '/api/v1/me', { token })
      expect({ name, status: res.statusCode, body: res.json() }).toEqual({
        name,
        status: 401,
        body: { detail: 'Given token not valid for any token type', code: 'token_not_valid' },
      })
    }
    // An access token presented for rotation is refused too.
    expect((await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: u.access } })).statusCode).toBe(401)
  })
})

describe('rate limiting', () => {
  it('is on by default outside tests, off in tests, and configurable', () => {
    expect(loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) }).rateLimit).toBe(true)
    expect(loadConfig({ NODE_ENV: 'development', DATA_DIR: '/tmp/sf-hardening-cfg' }).rateLimit).toBe(true)
    expect(loadConfig({ NODE_ENV: 'test' }).rateLimit).toBe(false)
    expect(loadConfig({ NODE_ENV: 'test', RATE_LIMIT: 'on' }).rateLimit).toBe(true)
    const config = loadConfig({ NODE_ENV: 'test', RATE_LIMIT_TOKEN_PER_IP: '3', RATE_LIMIT_WINDOW: '30' })
    expect(config.rateLimits.token).toEqual({ perIp: 3, perAccount: 5 })
    expect(config.rateLimitWindowSeconds).toBe(30)
    expect(loadConfig({ NODE_ENV: 'test' }).rateLimits.token.perIp).toBe(10)
  })

  it('never throttles while off (tests)', async () => {
    const email = uniqueEmail()
    for (let i = 0; i < 15; i++) {
      const res = await t.request('POST', '/api/v1/auth/token', { body: { email, password: 'Wrong-Pass-1' } })
      expect(res.statusCode).toBe(401)
    }
  })

  describe('when on', () => {
    let r: TestApp
    const limits = {
      register: { perIp: 4, perAccount: 2 },
      token: { perIp: 4, perAccount: 3 },
      refresh: { perIp: 4, perAccount: 2 },
      password: { perIp: 4, perAccount: 2 },
    }
    beforeAll(async () => {
      r = await createTestApp({ config: { rateLimit: true, rateLimits: limits } })
    })
    afterAll(async () => {
      await r?.close()
    })

    let ip = 0
    const freshIp = () => `10.${(ip >> 8) & 255}.${ip++ & 255}.${Math.floor(Math.random() * 250) + 1}`
    const post = (app: TestApp, url: string, body: unknown, remoteAddress: string, token?: string) =>
      app.app.inject({
        method: 'POST',
        url,
        remoteAddress,
        headers: { ...json, ...(token ? { authorization: `Bearer ${token}` } : {}) },
        payload: JSON.stringify(body),
      })

    const expectThrottled = (res: Awaited<ReturnType<typeof post>>) => {
      expect(res.statusCode).toBe(429)
      const seconds = Number(res.headers['retry-after'])
      expect(seconds).toBeGreaterThanOrEqual(1)
      expect(seconds).toBeLessThanOrEqual(60)
      expect(res.json()).toEqual({ detail: `Request was throttled. Expected available in ${seconds} second${seconds === 1 ? '' : 's'}.` })
    }

    it('limits token requests per client address', async () => {
      const addr = freshIp()
      for (let i = 0; i < 4; i++) {
        expect((await post(r, '/api/v1/auth/token', { email: uniqueEmail(), password: 'Wrong-Pass-1' }, addr)).statusCode).toBe(401)
      }
      expectThrottled(await post(r, '/api/v1/auth/token', { email: uniqueEmail(), password: 'Wrong-Pass-1' }, addr))
      // Another address is unaffected.
      expect((await post(r, '/api/v1/auth/token', { email: uniqueEmail(), password: 'Wrong-Pass-1' }, freshIp())).statusCode).toBe(401)
    })

    it('limits token requests per account from many addresses, whatever the case of the email', async () => {
      const u = await r.user()
      for (let i = 0; i < 2; i++) {
        const email = i % 2 ? u.email.toUpperCase() : u.email
        expect((await post(r, '/api/v1/auth/token', { email, password: 'Wrong-Pass-1' }, freshIp())).statusCode).toBe(401)
      }
      // r.user() logged in once already: that was the third.
      expectThrottled(await post(r, '/api/v1/auth/token', { email: u.email, password: u.password }, freshIp()))
      // The rest of the API, and other accounts, are unaffected.
      expect((await r.request('GET', '/api/v1/me', { token: u.access })).statusCode).toBe(200)
      expect((await post(r, '/api/v1/auth/token', { email: uniqueEmail(), password: 'x' }, freshIp())).statusCode).toBe(401)
    })

    it('limits registration per address and per email', async () => {
      const addr = freshIp()
      const results: number[] = []
      for (let i = 0; i < 5; i++) {
        results.push((await post(r, '/api/v1/auth/register', { email: uniqueEmail(), password: 'short' }, addr)).statusCode)
      }
      expect(results).toEqual([400, 400, 400, 400, 429])
      const email = uniqueEmail()
      expect((await post(r, '/api/v1/auth/register', { email, password: PASSWORD }, freshIp())).statusCode).toBe(201)
      expect((await post(r, '/api/v1/auth/register', { email, password: PASSWORD }, freshIp())).statusCode).toBe(400)
      expectThrottled(await post(r, '/api/v1/auth/register', { email: email.toUpperCase(), password: PASSWORD }, freshIp()))
    })

    it('limits refresh per address and per account', async () => {
      const u = await r.user()
      let refresh = u.refresh
      for (let i = 0; i < 2; i++) {
        const res = await post(r, '/api/v1/auth/token/refresh', { refresh }, freshIp())
        expect(res.statusCode).toBe(200)
        refresh = res.json().refresh
      }
      expectThrottled(await post(r, '/api/v1/auth/token/refresh', { refresh }, freshIp()))
      const addr = freshIp()
      for (let i = 0; i < 4; i++) expect((await post(r, '/api/v1/auth/token/refresh', { refresh: 'junk' }, addr)).statusCode).toBe(401)
      expectThrottled(await post(r, '/api/v1/auth/token/refresh', { refresh: 'junk' }, addr))
    })

    it('limits password changes per user', async () => {
      const u = await r.user()
      for (let i = 0; i < 2; i++) {
        const res = await post(r, '/api/v1/me/password', { old_password: 'Guess-Number-1', new_password: 'Another-Pass-9' }, freshIp(), u.access)
        expect(res.statusCode).toBe(400)
      }
      expectThrottled(
        await post(r, '/api/v1/me/password', { old_password: u.password, new_password: 'Another-Pass-9' }, freshIp(), u.access),
      )
    })

    it('leaves every other route alone', async () => {
      const addr = freshIp()
      for (let i = 0; i < 30; i++) {
        const res = await r.app.inject({ method: 'GET', url: '/health/live', remoteAddress: addr })
        expect(res.statusCode).toBe(200)
        expect(res.headers['x-ratelimit-limit']).toBeUndefined()
      }
    })

    it.runIf(realBackend)('holds across instances (counters in Redis)', async () => {
      const second = await createTestApp({ shared: r })
      try {
        const addr = freshIp()
        for (let i = 0; i < 2; i++) {
          expect((await post(r, '/api/v1/auth/token', { email: uniqueEmail(), password: 'x' }, addr)).statusCode).toBe(401)
          expect((await post(second, '/api/v1/auth/token', { email: uniqueEmail(), password: 'x' }, addr)).statusCode).toBe(401)
        }
        expectThrottled(await post(second, '/api/v1/auth/token', { email: uniqueEmail(), password: 'x' }, addr))
      } finally {
        await second.close()
      }
    })

    it.runIf(realBackend)('counts from the first request of an instance just started, even over a slow link to Redis', async () => {
      const slow = await new TcpProxy(targetOf(process.env.REDIS_URL!, 6379), { latencyMs: 150 }).start()
      const fresh = await createTestApp({ config: { rateLimit: true, rateLimits: limits, redisUrl: slow.url(process.env.REDIS_URL!) } })
      try {
        const addr = freshIp()
        for (let i = 0; i < 4; i++) {
          expect((await post(fresh, '/api/v1/auth/token', { email: uniqueEmail(), password: 'Wrong-Pass-1' }, addr)).statusCode).toBe(401)
        }
        expectThrottled(await post(fresh, '/api/v1/auth/token', { email: uniqueEmail(), password: 'Wrong-Pass-1' }, addr))
      } finally {
        await fresh.close()
        await slow.cut()
      }
    })

    it('lets requests through when the counters’ Redis is unreachable', async () => {
      const down = await createTestApp({ config: { rateLimit: true, rateLimits: limits, redisUrl: 'redis://127.0.0.1:1' } })
      try {
        const addr = freshIp()
        for (let i = 0; i < 6; i++) {
          const started = Date.now()
          const res = await post(down, '/api/v1/auth/token', { email: uniqueEmail(), password: 'x' }, addr)
          expect(res.statusCode).toBe(401)
          expect(Date.now() - started).toBeLessThan(2_000)
        }
      } finally {
        await down.close()
      }
    })
  })
})
