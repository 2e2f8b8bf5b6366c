import { randomBytes } from 'node:crypto'
import { sql } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { EPOCH } from '../src/cache/index.js'
import { categories, products } from '../src/db/schema.js'
import { type TestApp, createTestApp, realBackend } from './helpers.js'

/**
 * Product lists are a bounded set of statement shapes: a shape depends on which filters are present, the ordering
 * and the kind of page, never on their values, so requests that differ only in values send the same statement text
 * (one prepared statement per shape on a real server), each page costing the same number of statements.
 */
let t: TestApp
let off: TestApp
/** The cache-off app's statement log: the embedded database (and its log) is shared with the first app. */
let log: string[]
const tok = `sh${randomBytes(3).toString('hex')}`
const cats: number[] = []
const quoted = `q"u\\o${tok}`

beforeAll(async () => {
  t = await createTestApp()
  off = await createTestApp({ shared: t, config: { cacheTtlSeconds: 0 } })
  log = off.ctx.database === t.ctx.database ? t.queries : off.queries
  const made = await t.ctx.db
    .insert(categories)
    .values([1, 2, 3].map((i) => ({ name: `Shape ${i} ${tok}` })))
    .returning()
  cats.push(...made.map((c) => c.id))
  await t.ctx.db.insert(products).values([
    ...Array.from({ length: 12 }, (_, i) => ({
      name: `Item ${i}`,
      description: `${tok} ${i % 2 ? 'odd' : 'even'} ab`,
      price: `${i + 1}.00`,
      stock: i % 3 ? i : 0,
      categoryId: cats[i % 3]!,
    })),
    // LIKE's and arrays' special characters in a term that is not the indexed one must match literally.
    { name: 'Quoted', description: `${tok} ${quoted} 50%`, price: '1.00', stock: 1, categoryId: cats[0]! },
  ])
})
afterAll(async () => {
  await off?.close()
  await t?.close()
})

/** The statements one cache-off request sends, and its answer. */
async function statements(url: string) {
  log.length = 0
  const res = await off.request('GET', `/api/v1/products?${url}`)
  expect(res.statusCode, res.body).toBe(200)
  return { sent: [...log], body: res.json<{ results: { name: string; price: string }[]; next: string | null }>() }
}

describe('statement shapes', () => {
  it('sends one statement text per shape, whatever the values', async () => {
    const same = [
      [`category=${cats[0]}&min_price=1&search=${tok}`, `category=${cats[1]},${cats[2]}&min_price=7.5&search=${tok}`],
      [`category=${cats[0]}&ordering=-price&page_size=2`, `category=${cats[0]},${cats[1]}&ordering=-price&page_size=5&page=2`],
      [`search=${tok}%20odd&in_stock=true`, `search=${tok}%20even%20ab%20it&in_stock=true`],
      [`search=${tok}&max_price=5&cursor=&ordering=name`, `search=${tok}&max_price=9&cursor=&ordering=name&page_size=3`],
    ]
    const texts: string[] = []
    for (const [a, b] of same) {
      const first = await statements(a!)
      const second = await statements(b!)
      expect(first.sent, a).toHaveLength(1)
      expect(second.sent, b).toEqual(first.sent)
      texts.push(first.sent[0]!)
    }
    // Other shapes are other statements.
    expect(new Set(texts).size).toBe(same.length)
  })

  it('reads a cursor page forward and back with one statement text each, at any position', async () => {
    const first = await statements(`search=${tok}&ordering=price&page_size=2&cursor=`)
    const next = new URL(first.body.next!)
    const second = await statements(next.search.slice(1))
    const third = await statements(new URL(second.body.next!).search.slice(1))
    expect(third.sent).toEqual(second.sent)
    expect(third.body.results.map((r) => r.price)).toEqual(['4.00', '5.00'])
  })

  it('costs the same statements per page on a miss with the cache on, whatever the filters', async () => {
    const counts: number[] = []
    for (const url of [
      `category=${cats[0]}`,
      `category=${cats[0]},${cats[1]}&min_price=2&max_price=9&in_stock=false&ordering=created_at&page_size=2`,
      `search=${tok}%20odd&ordering=-name&page_size=3&page=2`,
    ]) {
      // Every cached page, count and product dropped: each request is a whole miss.
      await t.ctx.cache.invalidate((mark) => mark([EPOCH]))
      t.queries.length = 0
      expect((await t.request('GET', `/api/v1/products?${url}`)).statusCode).toBe(200)
      counts.push(t.queries.length)
    }
    expect(new Set(counts).size).toBe(1)
  })
})

describe('search terms', () => {
  it('matches every term, the one the index looks up and the others, literally', async () => {
    const names = async (search: string) => (await statements(`search=${encodeURIComponent(search)}`)).body.results.map((r) => r.name)
    expect(await names(`${tok} ${quoted}`)).toEqual(['Quoted'])
    expect(await names(`${tok} 50%`)).toEqual(['Quoted'])
    expect(await names(`${tok} 5_%`)).toEqual([])
    // A short term beside an indexable one only filters what the index found.
    expect(await names(`ab ${tok} odd`)).toEqual(['Item 1', 'Item 3', 'Item 5', 'Item 7', 'Item 9', 'Item 11'])
    // The longest term is the one looked up; a shorter one that matches nothing still empties the page.
    expect(await names(`${tok} zzz`)).toEqual([])
  })
})

describe.runIf(realBackend)('the trigram index', () => {
  it("serves a search page's statements", async () => {
    // The generic plan of each statement a search page sends, with every path but a bitmap scan priced out: the
    // search index appears only if the statement's expression is the one it was built on. (With a filter that
    // another index serves, in_stock or a price bound, the planner may rightly prefer that index.)
    for (const url of [`search=${tok}`, `search=${tok}%20odd&category=${cats[0]}&ordering=-price`, `search=${tok}&cursor=`]) {
      const { sent } = await statements(url)
      const searching = sent.filter((text) => text.includes('$'))
      expect(searching.length, url).toBeGreaterThan(0)
      for (const [i, text] of searching.entries()) {
        const params = new Set(text.match(/\$\d+/g)).size
        const plan = await t.ctx.db.transaction(async (tx) => {
          for (const setting of ['enable_seqscan', 'enable_indexscan', 'enable_indexonlyscan']) await tx.execute(sql.raw(`SET LOCAL ${setting} = off`))
          await tx.execute(sql.raw('SET LOCAL plan_cache_mode = force_generic_plan'))
          await tx.execute(sql.raw(`PREPARE shape_${i} AS ${text}`))
          const explained = await tx.execute(sql.raw(`EXPLAIN (FORMAT JSON) EXECUTE shape_${i}(${Array(params).fill('NULL').join(', ')})`))
          await tx.execute(sql.raw(`DEALLOCATE shape_${i}`))
          return JSON.stringify((explained as unknown as { rows: unknown[] }).rows)
        })
        expect(plan, `${url}: ${text}`).toContain('"Index Name":"products_search_trgm_idx"')
      }
    }
  })
})
