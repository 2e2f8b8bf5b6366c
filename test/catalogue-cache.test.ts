import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, type TestUser, createTestApp, realBackend } from './helpers.js'
import { productFamily } from '../src/catalogue/invalidation.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'

/**
 * The catalogue cache under writes: a list entry holds which products a list shows, each product has its own
 * entry, and a write invalidates list entries only when it can change which products a list holds.
 */
let t: TestApp
let staff: TestUser
beforeAll(async () => {
  t = await createTestApp()
  staff = await t.user({ staff: true })
})
afterAll(async () => {
  await t?.close()
})

type Product = Record<string, any>
const token = () => `tok${randomBytes(4).toString('hex')}`

async function newCategory(app = t): Promise<number> {
  const res = await app.request('POST', '/api/v1/categories', { token: staff.access, body: { name: token() } })
  expect(res.statusCode).toBe(201)
  return res.json().id
}

async function newProduct(category_id: number, fields: Record<string, unknown> = {}, app = t): Promise<Product> {
  const res = await app.request('POST', '/api/v1/products', {
    token: staff.access,
    body: { name: `Product ${token()}`, price: '10.00', stock: 5, category_id, ...fields },
  })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}

async function write(method: string, url: string, body?: unknown, app = t): Promise<Product> {
  const res = await app.request(method, url, { token: staff.access, body })
  expect(res.statusCode, res.body).toBeLessThan(300)
  return res.statusCode === 204 ? {} : res.json()
}

const get = (url: string, app = t) => app.request('GET', url)
const list = (query: string) => `/api/v1/products?${query}`

/** Reads each URL twice: the second read must be a HIT, so each one is cached before the write under test. */
async function warm(...urls: string[]): Promise<void> {
  for (const url of urls) {
    await get(url)
    expect((await get(url)).headers['x-cache'], url).toBe('HIT')
  }
}

/** A list read: its X-Cache, the ids it shows, its count (checked against the results when all fit one page). */
async function read(url: string, app = t) {
  const res = await get(url, app)
  expect(res.statusCode, res.body).toBe(200)
  const body = res.json()
  if (body.count !== undefined && body.next === null && body.previous === null) expect(body.results).toHaveLength(body.count)
  return { cache: res.headers['x-cache'], ids: body.results.map((p: Product) => p.id) as number[], body }
}

const shown = (page: { body: { results: Product[] } }, id: number) => page.body.results.find((p) => p.id === id)

describe('stock changes', () => {
  it('7 → 6 (an adjustment, then an order) leaves every list cached, and lists show the new stock', async () => {
    const c = await newCategory()
    const tag = token()
    const product = await newProduct(c, { stock: 7, name: `Lamp ${tag}` })
    const urls = [
      list(`category=${c}`),
      list(`category=${c}&in_stock=true`),
      list(`category=${c}&max_price=20&ordering=-price`),
      list(`category=${c}&ordering=name`),
      list(`search=${tag}`),
      list(`search=${tag}&cursor=`),
      `/api/v1/products/${product.id}`,
    ]
    await warm(...urls)

    await write('POST', `/api/v1/products/${product.id}/stock`, { delta: -1 })
    for (const url of urls) {
      const res = await get(url)
      expect(res.headers['x-cache'], url).toBe('HIT')
      expect(res.body, url).toContain(`"id":${product.id},`)
      expect(res.body, url).toContain('"stock":6,"in_stock":true')
    }

    const customer = await t.user()
    expect((await t.request('POST', '/api/v1/cart/items', { token: customer.access, body: { product_id: product.id, quantity: 1 } })).statusCode).toBe(201)
    expect((await t.request('POST', '/api/v1/orders', { token: customer.access, body: {} })).statusCode).toBe(201)
    // The order cost the cache that product's entry and no list: the first read loads it (one statement, no list
    // statement) and fills it for every list.
    t.queries.length = 0
    for (const url of urls) expect((await get(url)).body, url).toContain('"stock":5,"in_stock":true')
    expect(t.queries).toHaveLength(1)
    t.queries.length = 0
    for (const url of urls) {
      const res = await get(url)
      expect(res.headers['x-cache'], url).toBe('HIT')
      expect(res.body, url).toContain('"stock":5,"in_stock":true')
    }
    expect(t.queries).toEqual([])
  })

  it('1 → 0 (an order) invalidates exactly the in_stock lists; cancelling (0 → 1) does too', async () => {
    const c = await newCategory()
    const other = await newCategory()
    const tag = token()
    const product = await newProduct(c, { stock: 1, name: `Kettle ${tag}` })
    const sibling = await newProduct(c, { stock: 3, name: `Kettle ${tag}` })
    await newProduct(other, { stock: 3 })
    const urls = {
      plain: list(`category=${c}`),
      priced: list(`category=${c}&max_price=20&ordering=price`),
      searched: list(`search=${tag}`),
      stocked: list(`category=${c}&in_stock=true`),
      soldOut: list(`category=${c}&in_stock=false`),
      stockedAll: list(`search=${tag}&in_stock=true`),
      otherStocked: list(`category=${other}&in_stock=true`),
    }
    await warm(...Object.values(urls))

    const customer = await t.user()
    await t.request('POST', '/api/v1/cart/items', { token: customer.access, body: { product_id: product.id, quantity: 1 } })
    const order = await t.request('POST', '/api/v1/orders', { token: customer.access, body: {} })
    expect(order.statusCode).toBe(201)

    const kept = [urls.plain, urls.priced, urls.searched, urls.otherStocked]
    t.queries.length = 0
    for (const url of kept) {
      const page = await read(url)
      if (url !== urls.otherStocked) expect(shown(page, product.id), url).toMatchObject({ stock: 0, in_stock: false })
    }
    // These lists kept their entries: the first read loaded the product's (one statement), no list statement ran.
    expect(t.queries).toHaveLength(1)
    for (const url of kept) expect((await read(url)).cache, url).toBe('HIT')
    const stocked = await read(urls.stocked)
    expect(stocked).toMatchObject({ cache: 'MISS', ids: [sibling.id] })
    const soldOut = await read(urls.soldOut)
    expect(soldOut).toMatchObject({ cache: 'MISS', ids: [product.id] })
    expect(await read(urls.stockedAll)).toMatchObject({ cache: 'MISS', ids: [sibling.id] })

    await warm(...Object.values(urls))
    expect((await t.request('POST', `/api/v1/orders/${order.json().id}/cancel`, { token: customer.access })).statusCode).toBe(200)
    for (const url of [urls.plain, urls.priced, urls.searched, urls.otherStocked]) expect((await read(url)).cache, url).toBe('HIT')
    expect(shown(await read(urls.plain), product.id)).toMatchObject({ stock: 1, in_stock: true })
    expect(await read(urls.stocked)).toMatchObject({ cache: 'MISS', ids: [product.id, sibling.id] })
    expect(await read(urls.soldOut)).toMatchObject({ cache: 'MISS', ids: [] })
    expect(await read(urls.stockedAll)).toMatchObject({ cache: 'MISS', ids: [product.id, sibling.id] })
  })
})

describe('other product writes reach every affected list at once', () => {
  it('a price change moves the product between price ranges and in price order; other lists stay cached', async () => {
    const c = await newCategory()
    const other = await newCategory()
    const product = await newProduct(c, { price: '10.00' })
    const dearer = await newProduct(c, { price: '15.00' })
    const urls = {
      cheap: list(`category=${c}&max_price=12`),
      dear: list(`category=${c}&min_price=12`),
      byPrice: list(`category=${c}&ordering=price`),
      plain: list(`category=${c}`),
      otherCheap: list(`category=${other}&max_price=12`),
    }
    await warm(...Object.values(urls))
    await write('PATCH', `/api/v1/products/${product.id}`, { price: '20.00' })
    expect((await read(urls.cheap)).ids).toEqual([])
    expect((await read(urls.dear)).ids).toEqual([product.id, dearer.id])
    expect((await read(urls.byPrice)).ids).toEqual([dearer.id, product.id])
    const plain = await read(urls.plain)
    expect(plain.cache).toBe('HIT')
    expect(shown(plain, product.id)).toMatchObject({ price: '20.00' })
    expect((await read(urls.otherCheap)).cache).toBe('HIT')
  })

  it('a category change moves the product between category lists', async () => {
    const [c, d, e] = [await newCategory(), await newCategory(), await newCategory()]
    const tag = token()
    const product = await newProduct(c, { name: `Chair ${tag}` })
    const urls = { from: list(`category=${c}`), to: list(`category=${d}`), both: list(`category=${c},${d}`), third: list(`category=${e}`), search: list(`search=${tag}`) }
    await warm(...Object.values(urls))
    await write('PATCH', `/api/v1/products/${product.id}`, { category_id: d })
    expect((await read(urls.from)).ids).toEqual([])
    const to = await read(urls.to)
    expect(to.ids).toEqual([product.id])
    expect(shown(to, product.id)!.category.id).toBe(d)
    expect((await read(urls.both)).ids).toEqual([product.id])
    expect((await read(urls.third)).cache).toBe('HIT')
    const search = await read(urls.search)
    expect(search.cache).toBe('HIT')
    expect(shown(search, product.id)!.category.id).toBe(d)
  })

  it('a rename or a new description reaches searches and name order; other lists stay cached', async () => {
    const c = await newCategory()
    const [oldTag, newTag] = [token(), token()]
    const product = await newProduct(c, { name: `Zebra ${oldTag}` })
    const second = await newProduct(c, { name: `Mango ${oldTag}` })
    const urls = {
      old: list(`search=${oldTag}`),
      new: list(`search=${newTag}`),
      byName: list(`category=${c}&ordering=name`),
      plain: list(`category=${c}`),
      priced: list(`category=${c}&max_price=100`),
    }
    await warm(...Object.values(urls))
    await write('PATCH', `/api/v1/products/${product.id}`, { name: `Apple ${newTag}` })
    expect((await read(urls.old)).ids).toEqual([second.id])
    expect((await read(urls.new)).ids).toEqual([product.id])
    expect((await read(urls.byName)).ids).toEqual([product.id, second.id])
    for (const url of [urls.plain, urls.priced]) {
      const page = await read(url)
      expect(page.cache).toBe('HIT')
      expect(shown(page, product.id)!.name).toBe(`Apple ${newTag}`)
    }

    await warm(...Object.values(urls))
    await write('PATCH', `/api/v1/products/${second.id}`, { description: `now also ${newTag}` })
    expect((await read(urls.new)).ids).toEqual([product.id, second.id])
    expect((await read(urls.plain)).cache).toBe('HIT')
  })

  it('create, retire and delete are reflected in every list at once, counts included', async () => {
    const c = await newCategory()
    const tag = token()
    const urls = [list(`category=${c}`), list(`category=${c}&in_stock=true&ordering=-price`), list(`search=${tag}`), list(`search=${tag}&cursor=`)]
    await warm(...urls)
    const a = await newProduct(c, { name: `Desk ${tag}` })
    const b = await newProduct(c, { name: `Desk ${tag}`, price: '5.00' })
    for (const url of urls) expect((await read(url)).ids.sort(), url).toEqual([a.id, b.id].sort())
    expect((await read(urls[0]!)).body.count).toBe(2)

    // A product that appears in an order is retired, not deleted.
    const customer = await t.user()
    await t.request('POST', '/api/v1/cart/items', { token: customer.access, body: { product_id: a.id, quantity: 1 } })
    expect((await t.request('POST', '/api/v1/orders', { token: customer.access, body: {} })).statusCode).toBe(201)
    await warm(...urls)
    await write('DELETE', `/api/v1/products/${a.id}`)
    for (const url of urls) expect((await read(url)).ids, url).toEqual([b.id])
    expect((await get(`/api/v1/products/${a.id}`)).statusCode).toBe(404)

    await warm(...urls)
    await write('DELETE', `/api/v1/products/${b.id}`)
    for (const url of urls) expect((await read(url)).ids, url).toEqual([])
    expect((await read(urls[0]!)).body.count).toBe(0)
  })

  it('a category rename reaches every product entry, and no list entry', async () => {
    const c = await newCategory()
    const product = await newProduct(c)
    await warm(list(`category=${c}`), list(`category=${c}&in_stock=true`))
    t.queries.length = 0
    await write('PATCH', `/api/v1/categories/${c}`, { name: 'Renamed ' + token() })
    t.queries.length = 0
    const page = await read(list(`category=${c}`))
    expect(shown(page, product.id)!.category.name).toMatch(/^Renamed /)
    // The list entry was kept: only the product was read again (a list miss would also read its ids and count).
    expect(t.queries).toHaveLength(1)
  })
})

describe('no stale window', () => {
  it('never fills an answer read before a write under the generation after it (interleaved by hand)', async () => {
    const key = `test:list:${token()}`
    const scopes = [`test-scope-${token()}`]
    const ids = [String(1_000_000 + Math.floor(Math.random() * 1e6))]
    // The "database": what a loader reads is the version committed when it reads.
    let committed = 'old'
    const items = async (wanted: readonly string[]) => new Map(wanted.map((id) => [id, `{"id":${id},"v":"${committed}"}`]))
    const source = { list: async () => ({ ids, head: `{"v":"${committed}","results":[`, tail: ']}' }), items }
    // The reader misses and reads the database (old data) before a write commits, and fills after it has.
    let release!: () => void
    const gate = new Promise<void>((done) => (release = done))
    let listed!: () => void
    const hasRead = new Promise<void>((done) => (listed = done))
    const reading = t.ctx.cache.readList(key, scopes, productFamily, {
      list: async () => {
        const answer = await source.list()
        listed()
        await gate
        return answer
      },
      items,
    })
    await hasRead
    await t.ctx.cache.invalidate(async (mark) => {
      await mark([...scopes, `product:${ids[0]}`])
      committed = 'new'
    })
    release()
    // The overlapping read may answer either; its old list entry must never be served afterwards.
    expect((await reading).body).toContain('"v":"old"')
    const after = await t.ctx.cache.readList(key, scopes, productFamily, source)
    expect(after).toEqual({ body: `{"v":"new","results":[{"id":${ids[0]},"v":"new"}]}`, hit: false })
    committed = 'newer (never read: the cache answers)'
    expect(await t.ctx.cache.readList(key, scopes, productFamily, source)).toEqual({ body: after.body, hit: true })
  })

  it('bypasses the cache while a write is in flight, and never serves it after', async () => {
    const c = await newCategory()
    const product = await newProduct(c, { price: '10.00' })
    const url = list(`category=${c}&max_price=15`)
    await warm(url)
    let inFlight!: Awaited<ReturnType<typeof read>>
    await t.ctx.cache.invalidate(async (mark) => {
      await mark([`m:${c}:price`, `product:${product.id}`])
      inFlight = await read(url)
    })
    expect(inFlight.cache).toBe('MISS')
    expect((await read(url)).cache).toBe('MISS')
    expect((await read(url)).cache).toBe('HIT')
  })
})

describe('two instances on one database and cache', () => {
  let b: TestApp
  beforeAll(async () => {
    if (realBackend) b = await createTestApp({ shared: t })
  })
  afterAll(async () => {
    await b?.close()
  })

  it.runIf(realBackend)('a read on one instance after a write on the other never shows older data, and hits where it can', async () => {
    const c = await newCategory()
    const product = await newProduct(c, { stock: 3, price: '10.00' })
    const urls = {
      plain: list(`category=${c}`),
      stocked: list(`category=${c}&in_stock=true`),
      cheap: list(`category=${c}&max_price=15`),
      detail: `/api/v1/products/${product.id}`,
    }
    const expectFresh = async (latest: Product, app: TestApp) => {
      expect((await get(urls.detail, app)).json()).toEqual(latest)
      expect(shown(await read(urls.plain, app), product.id)).toEqual(latest)
      expect((await read(urls.stocked, app)).ids).toEqual(latest.stock > 0 ? [product.id] : [])
      expect((await read(urls.cheap, app)).ids).toEqual(Number(latest.price) <= 15 ? [product.id] : [])
    }
    const writes: [string, string, unknown][] = [
      ['POST', `${urls.detail}/stock`, { delta: -1 }],
      ['PATCH', urls.detail, { price: '20.00' }],
      ['POST', `${urls.detail}/stock`, { delta: -2 }],
      ['PATCH', urls.detail, { price: '12.00', name: `Renamed ${token()}` }],
      ['POST', `${urls.detail}/stock`, { delta: 4 }],
      ['POST', `${urls.detail}/stock`, { delta: -1 }],
    ]
    for (const [i, [method, url, body]] of writes.entries()) {
      const [writer, reader] = i % 2 ? [b, t] : [t, b]
      for (const u of Object.values(urls)) await get(u, reader)
      // Reads on the other instance race the write; once it has answered, they must all see it.
      const racing = Array.from({ length: 8 }, (_, k) => get(Object.values(urls)[k % 4]!, reader))
      const latest = await write(method, url, body, writer)
      await Promise.all(racing)
      await expectFresh(latest, reader)
      await expectFresh(latest, writer)
    }
    // The last write (4 → 3) moved the product across no filter: the other instance's lists are still cached.
    for (const u of [urls.plain, urls.stocked, urls.cheap]) expect((await get(u, t)).headers['x-cache'], u).toBe('HIT')
  })
})

describe('an instance just started', () => {
  it.runIf(realBackend)('caches from its first read, even over a slow link to Redis', async () => {
    const slow = await new TcpProxy(targetOf(process.env.REDIS_URL!, 6379), { latencyMs: 150 }).start()
    const fresh = await createTestApp({ shared: t, config: { redisUrl: slow.url(process.env.REDIS_URL!), redisPrefix: `sftest:${token()}:` } })
    try {
      const url = list(`search=${token()}`)
      expect((await get(url, fresh)).headers['x-cache']).toBe('MISS')
      expect((await get(url, fresh)).headers['x-cache']).toBe('HIT')
    } finally {
      await fresh.close()
      await slow.cut()
    }
  })
})
