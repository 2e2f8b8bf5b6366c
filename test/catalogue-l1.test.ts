import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, type TestUser, createTestApp, realBackend } from './helpers.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'

/**
 * The first-level cache (finished answers in each process, in front of the shared cache) and the validators it
 * stores: ETags, 304 for a matching If-None-Match, and exactness across instances, also while the connection that
 * carries invalidations is cut.
 */
let t: TestApp
let staff: TestUser
const opened: { close: () => Promise<unknown> }[] = []
beforeAll(async () => {
  t = await createTestApp()
  staff = await t.user({ staff: true })
})
afterAll(async () => {
  for (const o of opened.reverse()) await o.close()
  await t?.close()
})

const token = () => `tok${randomBytes(4).toString('hex')}`

async function write(method: string, url: string, body: unknown, app = t): Promise<Record<string, any>> {
  const res = await app.request(method, url, { token: staff.access, body })
  expect(res.statusCode, res.body).toBeLessThan(300)
  return res.json()
}

const newCategory = async (app = t) => (await write('POST', '/api/v1/categories', { name: token() }, app)).id as number
const newProduct = (category_id: number, fields: Record<string, unknown> = {}, app = t) =>
  write(
    'POST',
    '/api/v1/products',
    { name: `Product ${token()}`, price: '10.00', stock: 5, category_id, ...fields },
    app,
  )

const get = (url: string, app = t, headers: Record<string, string> = {}) => app.request('GET', url, { headers })

async function metric(app: TestApp, name: string): Promise<number> {
  const line = (await app.request('GET', '/metrics')).body.split('\n').find((l) => l.startsWith(`${name} `))
  expect(line, name).toBeDefined()
  return Number(line!.split(' ')[1])
}
const l1Hits = (app: TestApp) => metric(app, 'cache_l1_hits_total')

/** Reads `url` until this instance answers it from its first level. */
async function warmL1(url: string, app: TestApp): Promise<void> {
  await expect
    .poll(
      async () => {
        const before = await l1Hits(app)
        expect((await get(url, app)).statusCode).toBe(200)
        return (await l1Hits(app)) - before
      },
      { timeout: 10_000 },
    )
    .toBe(1)
}

describe('ETag and If-None-Match', () => {
  it('answers 304 while the answer is unchanged, and 200 with a new ETag once it changed', async () => {
    const c = await newCategory()
    const product = await newProduct(c)
    const urls = [
      `/api/v1/products/${product.id}`,
      `/api/v1/products?category=${c}`,
      `/api/v1/categories/${c}`,
      '/api/v1/categories?page_size=100',
    ]
    for (const url of urls) {
      const first = await get(url)
      expect(first.statusCode).toBe(200)
      const etag = first.headers.etag as string
      expect(etag, url).toMatch(/^"[^"]+"$/)
      for (const ifNoneMatch of [etag, `W/${etag}`, `"elsewhere", ${etag}`, '*']) {
        const res = await get(url, t, { 'if-none-match': ifNoneMatch })
        expect(res.statusCode, `${url} ${ifNoneMatch}`).toBe(304)
        expect(res.body).toBe('')
        expect(res.headers.etag).toBe(etag)
      }
      const other = await get(url, t, { 'if-none-match': '"elsewhere", W/"nothing"' })
      expect(other.statusCode).toBe(200)
      expect(other.body).toBe(first.body)
      expect(other.headers.etag).toBe(etag)
    }

    const before = await Promise.all(urls.map(async (url) => (await get(url)).headers.etag as string))
    await write('PATCH', `/api/v1/products/${product.id}`, { price: '11.50' })
    await write('PATCH', `/api/v1/categories/${c}`, { name: `Renamed ${token()}` })
    for (const [i, url] of urls.entries()) {
      const res = await get(url, t, { 'if-none-match': before[i]! })
      expect(res.statusCode, url).toBe(200)
      expect(res.headers.etag, url).not.toBe(before[i])
      expect((await get(url, t, { 'if-none-match': res.headers.etag as string })).statusCode, url).toBe(304)
    }
    expect((await get(urls[0]!)).json().price).toBe('11.50')
  })
})

describe('first level', () => {
  it('serves repeated reads from the process, within CACHE_L1_BYTES', async () => {
    const limit = 4096
    const small = await createTestApp({ shared: t, config: { cacheL1Bytes: limit } })
    opened.push(small)
    const c = await newCategory(small)
    const description = 'x'.repeat(400)
    const urls = []
    for (let i = 0; i < 20; i++) urls.push(`/api/v1/products/${(await newProduct(c, { description }, small)).id}`)
    let sent = 0
    for (const url of urls) {
      for (let i = 0; i < 3; i++) {
        const res = await get(url, small)
        expect(res.json().description).toBe(description)
        if (i === 0) sent += res.rawPayload.length
      }
    }
    expect(sent).toBeGreaterThan(2 * limit)
    expect(await l1Hits(small)).toBeGreaterThan(0)
    const bytes = await metric(small, 'cache_l1_bytes')
    expect(bytes).toBeGreaterThan(0)
    expect(bytes).toBeLessThanOrEqual(limit)
  })

  it('CACHE_L1_BYTES=0 turns it off: hits come from the shared cache', async () => {
    const off = await createTestApp({ shared: t, config: { cacheL1Bytes: 0 } })
    opened.push(off)
    const url = `/api/v1/products/${(await newProduct(await newCategory(off), {}, off)).id}`
    await get(url, off)
    for (let i = 0; i < 3; i++) expect((await get(url, off)).headers['x-cache']).toBe('HIT')
    expect(await l1Hits(off)).toBe(0)
    expect(await metric(off, 'cache_l1_bytes')).toBe(0)
  })
})

describe.runIf(realBackend)('two instances with first levels, on one Redis', () => {
  let b: TestApp
  beforeAll(async () => {
    b = await createTestApp({ shared: t })
  })
  afterAll(async () => {
    await b?.close()
  })

  it('a read on one instance after a write on the other answers the write, every time', async () => {
    const c = await newCategory()
    const product = await newProduct(c)
    const detail = `/api/v1/products/${product.id}`
    const page = `/api/v1/products?category=${c}`
    for (let i = 0; i < 20; i++) {
      const [writer, reader] = i % 2 ? [b, t] : [t, b]
      await warmL1(detail, reader)
      await warmL1(page, reader)
      const price = `${20 + i}.00`
      await write('PATCH', detail, { price }, writer)
      expect((await get(detail, reader)).json().price).toBe(price)
      expect((await get(page, reader)).json().results[0].price).toBe(price)
    }
  })

  it('an invalidation still on its way to the reading instance when a read arrives is waited for', async () => {
    const slow = await new TcpProxy(targetOf(process.env.REDIS_URL!, 6379), { latencyMs: 100 }).start()
    opened.push({ close: () => slow.cut() })
    const far = await createTestApp({ shared: t, config: { redisUrl: slow.url(process.env.REDIS_URL!) } })
    opened.push(far)
    const detail = `/api/v1/products/${(await newProduct(await newCategory())).id}`
    for (const price of ['51.00', '52.00', '53.00']) {
      await warmL1(detail, far)
      await write('PATCH', detail, { price })
      expect((await get(detail, far)).json().price).toBe(price)
    }
  })

  it('while its invalidation connection is cut, an instance serves nothing from its first level; after, it does again', async () => {
    const proxy = await new TcpProxy(targetOf(process.env.REDIS_URL!, 6379)).start()
    opened.push({ close: () => proxy.cut() })
    const cut = await createTestApp({ shared: t, config: { redisUrl: proxy.url(process.env.REDIS_URL!) } })
    opened.push(cut)
    const detail = `/api/v1/products/${(await newProduct(await newCategory())).id}`
    await warmL1(detail, cut)

    await proxy.cut()
    const hits = await l1Hits(cut)
    for (const price of ['31.00', '32.00']) {
      await write('PATCH', detail, { price })
      const res = await get(detail, cut)
      expect(res.json().price).toBe(price)
      expect(res.headers['x-cache']).toBe('MISS')
    }
    expect(await l1Hits(cut)).toBe(hits)

    await proxy.restore()
    await warmL1(detail, cut)
    expect((await get(detail, cut)).json().price).toBe('32.00')
    await write('PATCH', detail, { price: '33.00' })
    expect((await get(detail, cut)).json().price).toBe('33.00')
  })

  it('an instance whose invalidation connection alone was killed never serves an answer from before the kill', async () => {
    const admin = new Redis(process.env.REDIS_URL!)
    opened.push({ close: () => admin.quit() })
    const detail = `/api/v1/products/${(await newProduct(await newCategory())).id}`
    const name = `${b.ctx.config.redisPrefix}c:invalidations`
    for (let i = 0; i < 5; i++) {
      await warmL1(detail, b)
      const clients = (await admin.client('LIST')) as string
      const ids = clients
        .split('\n')
        .filter((line) => line.includes(` name=${name} `))
        .map((line) => /^id=(\d+) /.exec(line)![1]!)
      // Every instance of this prefix has one; b's is among them.
      expect(ids.length).toBeGreaterThan(0)
      for (const id of ids) await admin.client('KILL', 'ID', id)
      const price = `${40 + i}.00`
      await write('PATCH', detail, { price })
      // Read while b has not reconnected yet, or not noticed the kill (i even), or once it is back (i odd): the
      // invalidation was published while it was not listening either way.
      if (i % 2) await expect.poll(() => b.ctx.cache.backend.invalidations().live, { timeout: 10_000 }).toBe(true)
      expect((await get(detail, b)).json().price).toBe(price)
    }
  })
})
