import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { categories, products } from '../src/db/schema.js'
import { EPOCH } from '../src/cache/index.js'
import { type TestApp, createTestApp } from './helpers.js'

/**
 * A fixed catalogue of two categories; every product carries a random token in its description, so searches and
 * category filters see only this file's rows whatever else the shared database holds.
 */
let t: TestApp
const tok = `tk${randomBytes(3).toString('hex')}`
let catA: number
let catB: number

interface Fixture {
  id: number
  name: string
  price: string
  stock: number
  createdAt: Date
  categoryId: number
  description: string
}
let fixtures: Fixture[] = []

const prices = ['5.00', '5.00', '10.50', '99.99', '0.00', '10.50', '250.00', '7.25', '5.00', '1000.00', '42.00', '10.49']
const colours = ['Red', 'blue', 'GREEN']

beforeAll(async () => {
  t = await createTestApp()
  const [a, b] = await t.ctx.db
    .insert(categories)
    .values([{ name: `A ${tok}` }, { name: `B ${tok}` }])
    .returning()
  catA = a!.id
  catB = b!.id
  const base = Date.parse('2024-01-01T00:00:00Z')
  const rows = [
    ...prices.map((price, i) => ({
      // Names repeat so that ordering by name needs its id tie-break.
      name: `${['Mug', 'Chair', 'Lamp', 'Desk'][i % 4]} ${colours[i % 3]}`,
      description: `${tok} ${colours[(i + 1) % 3]!.toLowerCase()} item number ${i}${i === 3 ? ' 100%_off' : ''}`,
      price,
      stock: i % 4 === 0 ? 0 : i,
      categoryId: catA,
      // Two products share a timestamp: created_at ordering needs the tie-break too.
      createdAt: new Date(base + (i === 5 ? 4 : i) * 86_400_000 + 123),
    })),
    ...['3.00', '60.00', '10.50'].map((price, i) => ({
      name: `Kettle ${i}`,
      description: `${tok} kitchen`,
      price,
      stock: i,
      categoryId: catB,
      createdAt: new Date(base + i * 3_600_000),
    })),
  ]
  fixtures = (await t.ctx.db.insert(products).values(rows).returning()).map((r) => ({ ...r }))
})
afterAll(async () => {
  await t?.close()
})

type Row = { id: number; price: string; stock: number; name: string; category: { id: number } }

/** Every page of a list, following `next` links. */
async function all(query: string): Promise<Row[]> {
  const rows: Row[] = []
  let url: string | null = `/api/v1/products?${query}&page_size=5`
  while (url) {
    const res = await t.request('GET', url)
    expect(res.statusCode, res.body).toBe(200)
    const body = res.json()
    rows.push(...body.results)
    url = body.next ? new URL(body.next).pathname + new URL(body.next).search : null
  }
  return rows
}

const ids = (rows: { id: number }[]) => rows.map((r) => r.id)
const byId = (a: Fixture, b: Fixture) => a.id - b.id
const num = (price: string) => Number(price)
const inA = () => fixtures.filter((f) => f.categoryId === catA)

describe('filters', () => {
  it('category: one, repeated, comma-separated', async () => {
    expect(ids(await all(`category=${catA}`))).toEqual(ids(inA().sort(byId)))
    const both = ids(fixtures.slice().sort(byId))
    expect(ids(await all(`category=${catA}&category=${catB}`))).toEqual(both)
    expect(ids(await all(`category=${catA},${catB}`))).toEqual(both)
    expect((await t.request('GET', '/api/v1/products?category=2147483000')).json()).toMatchObject({ count: 0, results: [] })
  })

  it('min_price and max_price are inclusive, alone and together', async () => {
    const pick = (lo: number, hi: number) => ids(fixtures.filter((f) => num(f.price) >= lo && num(f.price) <= hi).sort(byId))
    expect(ids(await all(`search=${tok}&min_price=10.50`))).toEqual(pick(10.5, Infinity))
    expect(ids(await all(`search=${tok}&max_price=5`))).toEqual(pick(-1, 5))
    expect(ids(await all(`search=${tok}&min_price=5.00&max_price=10.5`))).toEqual(pick(5, 10.5))
    expect(ids(await all(`search=${tok}&min_price=0&max_price=0`))).toEqual(pick(0, 0))
  })

  it('in_stock=true|false', async () => {
    expect(ids(await all(`search=${tok}&in_stock=true`))).toEqual(ids(fixtures.filter((f) => f.stock > 0).sort(byId)))
    expect(ids(await all(`search=${tok}&in_stock=false`))).toEqual(ids(fixtures.filter((f) => f.stock === 0).sort(byId)))
  })

  it('search: name and description, any case, every term must match, wildcards are literal', async () => {
    const matching = (...terms: string[]) =>
      ids(
        fixtures
          .filter((f) => terms.every((term) => `${f.name} ${f.description}`.toLowerCase().includes(term.toLowerCase())))
          .sort(byId),
      )
    expect(ids(await all(`search=${tok.toUpperCase()}`))).toHaveLength(fixtures.length)
    expect(ids(await all(`search=${tok}%20lamp`))).toEqual(matching(tok, 'lamp'))
    expect(ids(await all(`search=${tok}+RED`))).toEqual(matching(tok, 'red'))
    expect(ids(await all(`search=${tok},kettle`))).toEqual(matching(tok, 'kettle'))
    expect(matching(tok, 'red').length).toBeGreaterThan(matching(tok, 'red', 'mug').length)
    expect(ids(await all(`search=${tok}%20red%20mug`))).toEqual(matching(tok, 'red', 'mug'))
    expect(ids(await all(`search=${tok}%20100%25_off`))).toEqual(matching(tok, '100%_off'))
    expect(ids(await all(`search=${tok}%20100_`))).toEqual([])
    expect(ids(await all(`search=${tok}%20nothing-like-this`))).toEqual([])
    // A blank search is no filter.
    expect((await t.request('GET', `/api/v1/products?category=${catB}&search=%20`)).json().count).toBe(3)
  })

  it('combines every filter with an ordering', async () => {
    const expected = fixtures
      .filter((f) => f.categoryId === catA && num(f.price) >= 5 && num(f.price) <= 100 && f.stock > 0 && f.description.includes(tok))
      .sort((a, b) => num(b.price) - num(a.price) || b.id - a.id)
    expect(expected.length).toBeGreaterThan(2)
    const rows = await all(`category=${catA}&min_price=5&max_price=100&in_stock=true&search=${tok}&ordering=-price`)
    expect(ids(rows)).toEqual(ids(expected))
    expect(rows.every((r) => r.category.id === catA)).toBe(true)
  })

  it.each([
    ['min_price=abc', { min_price: ['Enter a number.'] }],
    ['max_price=1.2.3', { max_price: ['Enter a number.'] }],
    ['min_price=NaN', { min_price: ['Enter a number.'] }],
    ['ordering=x', { ordering: ['Select a valid choice. x is not one of the available choices.'] }],
    ['ordering=stock', { ordering: ['Select a valid choice. stock is not one of the available choices.'] }],
    ['in_stock=maybe', { in_stock: ['Select a valid choice. maybe is not one of the available choices.'] }],
    ['category=abc', { category: ['“abc” is not a valid value.'] }],
    ['category=1,x', { category: ['“x” is not a valid value.'] }],
    ['category=99999999999', { category: ['“99999999999” is not a valid value.'] }],
    ['min_price=x&ordering=y', { min_price: ['Enter a number.'], ordering: ['Select a valid choice. y is not one of the available choices.'] }],
  ])('refuses %s with a 400 keyed by parameter', async (query, errors) => {
    const res = await t.request('GET', `/api/v1/products?${query}`)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual(errors)
  })

  it('ignores unknown parameters', async () => {
    const res = await t.request('GET', `/api/v1/products?category=${catB}&colour=blue&format=xml`)
    expect(res.statusCode).toBe(200)
    expect(res.json().count).toBe(3)
  })
})

describe('ordering', () => {
  const cmp = {
    id: (a: Fixture, b: Fixture) => a.id - b.id,
    price: (a: Fixture, b: Fixture) => num(a.price) - num(b.price) || a.id - b.id,
    name: (a: Fixture, b: Fixture) => (a.name < b.name ? -1 : a.name > b.name ? 1 : a.id - b.id),
    created_at: (a: Fixture, b: Fixture) => a.createdAt.getTime() - b.createdAt.getTime() || a.id - b.id,
  }

  it.each(['price', '-price', 'name', '-name', 'created_at', '-created_at'] as const)('%s, tie-broken by id', async (ordering) => {
    const field = ordering.replace('-', '') as keyof typeof cmp
    const sorted = inA().sort(cmp[field])
    if (ordering.startsWith('-')) sorted.reverse()
    expect(ids(await all(`category=${catA}&ordering=${ordering}`))).toEqual(ids(sorted))
  })

  it('defaults to id', async () => {
    expect(ids(await all(`category=${catA}`))).toEqual(ids(inA().sort(cmp.id)))
  })
})

describe('page-number pagination', () => {
  it('has DRF’s shape with absolute next/previous links', async () => {
    const first = (await t.request('GET', `/api/v1/products?category=${catA}&page_size=5`)).json()
    expect(first.count).toBe(12)
    expect(first.results).toHaveLength(5)
    expect(first.previous).toBeNull()
    expect(first.next).toBe(`http://localhost/api/v1/products?category=${catA}&page_size=5&page=2`)
    const second = (await t.request('GET', `/api/v1/products?category=${catA}&page_size=5&page=2`)).json()
    expect(second.previous).toBe(`http://localhost/api/v1/products?category=${catA}&page_size=5`)
    expect(second.next).toBe(`http://localhost/api/v1/products?category=${catA}&page=3&page_size=5`)
    const last = (await t.request('GET', `/api/v1/products?category=${catA}&page_size=5&page=3`)).json()
    expect(last.results).toHaveLength(2)
    expect(last.next).toBeNull()
    expect(last.previous).toBe(`http://localhost/api/v1/products?category=${catA}&page=2&page_size=5`)
  })

  it('defaults to 10 per page and caps page_size at 100', async () => {
    const body = (await t.request('GET', `/api/v1/products?category=${catA}`)).json()
    expect(body.results).toHaveLength(10)
    expect(body.next).toBe(`http://localhost/api/v1/products?category=${catA}&page=2`)
    const [bulk] = await t.ctx.db.insert(categories).values({ name: `Bulk ${tok}` }).returning()
    await t.ctx.db.insert(products).values(
      Array.from({ length: 105 }, (_, i) => ({ name: `Bulk ${i}`, description: `bulk${tok}`, price: '1.00', categoryId: bulk!.id })),
    )
    const capped = (await t.request('GET', `/api/v1/products?search=bulk${tok}&page_size=1000`)).json()
    expect(capped.count).toBe(105)
    expect(capped.results).toHaveLength(100)
    expect(capped.next).toBe(`http://localhost/api/v1/products?page_size=100&search=bulk${tok}&page=2`)
  })

  it('answers 404 "Invalid page." past the end or for a bad page', async () => {
    for (const page of ['2', '999', '0', '-1', 'x']) {
      const res = await t.request('GET', `/api/v1/products?category=${catB}&page=${page}`)
      expect(res.statusCode).toBe(404)
      expect(res.json()).toEqual({ detail: 'Invalid page.' })
    }
    // An empty list still has its page 1.
    expect((await t.request('GET', '/api/v1/products?category=2147483000&page=1')).json()).toEqual({
      count: 0,
      next: null,
      previous: null,
      results: [],
    })
  })

  it('costs three queries on a miss (the page ids, the count, the products in one batch), none on a hit', async () => {
    // Product entries are shared by every list: drop them all, so this page has to load its products.
    await t.ctx.cache.invalidate((mark) => mark([EPOCH]))
    const url = `/api/v1/products?search=${tok}&ordering=name&in_stock=true&page_size=3`
    t.queries.length = 0
    const res = await t.request('GET', url)
    expect(res.statusCode).toBe(200)
    expect(res.json().results).toHaveLength(3)
    expect(t.queries).toHaveLength(3)

    t.queries.length = 0
    const again = await t.request('GET', url)
    expect(t.ctx.cache.enabled && again.headers['x-cache']).toBe('HIT')
    expect(t.queries).toEqual([])
    expect(again.body).toBe(res.body)
  })
})

describe('with the cache off', () => {
  it('reads each page in ONE statement (rows, products, categories and count), with the same bytes as the cache', async () => {
    const off = await createTestApp({ shared: t, config: { cacheTtlSeconds: 0 } })
    // The embedded database is shared with the first app, and so is its statement log.
    const log = off.ctx.database === t.ctx.database ? t.queries : off.queries
    try {
      const cursorFirst = (await t.request('GET', `/api/v1/products?category=${catA}&cursor=&ordering=price&page_size=3`)).json()
      const cursorNext = new URL(cursorFirst.next)
      const cursorSecond = (await t.request('GET', cursorNext.pathname + cursorNext.search)).json()
      const cursorBack = new URL(cursorSecond.previous)
      const urls = [
        `/api/v1/products?category=${catA}`,
        `/api/v1/products?category=${catA},${catB}&ordering=-price&page_size=4&page=2`,
        `/api/v1/products?search=${tok}&ordering=name&in_stock=true&page_size=3&page=2`,
        `/api/v1/products?search=${tok}&min_price=5&max_price=99.99&ordering=-created_at`,
        `/api/v1/products?category=${catB}&in_stock=false`,
        `/api/v1/products?category=2147483000`,
        `/api/v1/products?category=${catA}&page=99`,
        `/api/v1/products?category=${catA}&cursor=&ordering=price&page_size=3`,
        cursorNext.pathname + cursorNext.search,
        cursorBack.pathname + cursorBack.search,
        `/api/v1/products?category=${catA},${catB}&cursor=&ordering=-id&page_size=5`,
      ]
      for (const url of urls) {
        const cached = await t.request('GET', url)
        log.length = 0
        const res = await off.request('GET', url)
        expect(res.statusCode, url).toBe(cached.statusCode)
        expect(res.headers['x-cache']).toBe(cached.statusCode === 200 ? 'MISS' : undefined)
        expect(res.json(), url).toEqual(cached.json())
        expect(log, url).toHaveLength(1)
      }
    } finally {
      await off.close()
    }
  })
})

describe('keyset (cursor) pagination', () => {
  async function walk(query: string, size = 5) {
    const pages: { next: string | null; previous: string | null; results: Row[] }[] = []
    let url: string | null = `/api/v1/products?${query}&page_size=${size}&cursor=`
    while (url) {
      const res = await t.request('GET', url)
      expect(res.statusCode, res.body).toBe(200)
      const body = res.json()
      expect(body).not.toHaveProperty('count')
      pages.push(body)
      url = body.next ? new URL(body.next).pathname + new URL(body.next).search : null
    }
    return pages
  }

  it.each(['', '&ordering=price', '&ordering=-price', '&ordering=name', '&ordering=-name', '&ordering=created_at', '&ordering=-created_at'])(
    'walks every row once in the same order as page numbers%s',
    async (ordering) => {
      const query = `category=${catA}${ordering}`
      const pages = await walk(query)
      expect(pages.map((p) => p.results.length)).toEqual([5, 5, 2])
      expect(ids(pages.flatMap((p) => p.results))).toEqual(ids(await all(query)))
      expect(pages[0]!.previous).toBeNull()
      expect(pages.at(-1)!.next).toBeNull()
      // Walking back from the last page gives the same pages in reverse.
      let url: string | null = pages.at(-1)!.previous
      const back: Row[][] = []
      while (url) {
        const body = (await t.request('GET', new URL(url).pathname + new URL(url).search)).json()
        back.push(body.results)
        url = body.previous
      }
      expect(back.map(ids)).toEqual(pages.slice(0, -1).reverse().map((p) => ids(p.results)))
    },
  )

  it('works with filters and keeps them in its links', async () => {
    const query = `search=${tok}&in_stock=true&min_price=5&ordering=-created_at`
    const pages = await walk(query, 3)
    expect(ids(pages.flatMap((p) => p.results))).toEqual(ids(await all(query)))
    expect(pages[0]!.next).toMatch(/^http:\/\/localhost\/api\/v1\/products\?cursor=[\w-]+&in_stock=true&min_price=5&ordering=-created_at&page_size=3&search=/)
  })

  it('refuses a forged cursor or one from another ordering with 404 "Invalid cursor"', async () => {
    const first = (await t.request('GET', `/api/v1/products?category=${catA}&cursor=&ordering=price&page_size=2`)).json()
    const cursor = new URL(first.next).searchParams.get('cursor')!
    const forged = [
      'not-base64!!',
      Buffer.from('["price","abc",1,0]').toString('base64url'),
      Buffer.from('["created_at","yesterday",1,0]').toString('base64url'),
      Buffer.from('{"a":1}').toString('base64url'),
    ]
    for (const c of forged) {
      const res = await t.request('GET', `/api/v1/products?cursor=${c}&ordering=price`)
      expect(res.statusCode, c).toBe(404)
      expect(res.json()).toEqual({ detail: 'Invalid cursor' })
    }
    expect((await t.request('GET', `/api/v1/products?cursor=${cursor}&ordering=name`)).statusCode).toBe(404)
    expect((await t.request('GET', `/api/v1/products?cursor=${cursor}&ordering=price`)).statusCode).toBe(200)
  })
})
