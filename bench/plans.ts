/**
 * The plans and timings of the product list statements, shape by shape, on a real PostgreSQL database holding a
 * seeded catalogue (`npm run seed -- --products 1000000 --categories 50` first):
 *
 *   DATABASE_URL=postgres://... npx tsx bench/plans.ts [--ordering price,-name] [--mode page,after] [--only REGEX]
 *                                                      [--cached] [--plans] [--runs N]
 *
 * Each request goes through the service's own code (parseProductQuery, then listProducts, or with --cached
 * listProductIds: the page's ids and the count apart), which runs its statement; the statement's text and
 * parameters are then run again under EXPLAIN (ANALYZE, BUFFERS), once as a custom plan (planned for the values)
 * and once as the generic plan a prepared statement may switch to after five executions. It prints, per statement,
 * the best time of --runs executions of each, the rows and buffers read, and the plan's outline (--plans: the
 * whole plans). It asserts nothing; it is there so the reasoning about indexes and shapes can be checked again.
 */
import { parseArgs } from 'node:util'
import pg from 'pg'
import { drizzle } from 'drizzle-orm/node-postgres'
import type { Queryable } from '../src/db/index.js'
import * as schema from '../src/db/schema.js'
import { listProductIds, listProducts } from '../src/catalogue/lists.js'
import { type Ordering, type RawProductQuery, encodeCursor, parseProductQuery, sortField } from '../src/catalogue/query.js'

const { values: options } = parseArgs({
  options: {
    ordering: { type: 'string', default: 'id,price,-price,name,-name,created_at,-created_at' },
    mode: { type: 'string', default: 'page,after,before' },
    only: { type: 'string' },
    cached: { type: 'boolean', default: false },
    plans: { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
  },
})
const url = process.env.DATABASE_URL
if (!url) throw new Error('bench/plans.ts needs DATABASE_URL (a real PostgreSQL database with a seeded catalogue)')

const pool = new pg.Pool({ connectionString: url, max: 2 })
const captured: { text: string; params: unknown[] }[] = []
const db = drizzle({ client: pool, schema, logger: { logQuery: (text, params) => captured.push({ text, params }) } }) as unknown as Queryable
const scalar = async (text: string) => Object.values((await pool.query(text)).rows[0] as object)[0] as string

const [cat1, cat2] = (await pool.query('SELECT id FROM categories ORDER BY id LIMIT 2')).rows.map((r: { id: number }) => String(r.id))
/** Cursors half-way through the catalogue, by each sort column. */
const middle: Record<string, string | null> = {
  id: null,
  price: await scalar('SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY price)::text FROM products'),
  name: await scalar('SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY name) FROM products'),
  created_at: await scalar(
    `SELECT to_char(percentile_disc(0.5) WITHIN GROUP (ORDER BY created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') FROM products`,
  ),
}
const midId = Number(await scalar('SELECT (max(id) / 2)::text FROM products'))

/** Every combination of filters, each with a broad and a narrow value where the value changes the plan. */
function filterCombinations(): RawProductQuery[] {
  const out: RawProductQuery[] = []
  for (const category of [undefined, [cat1!], [`${cat1},${cat2}`]])
    for (const min_price of [undefined, '50'])
      for (const max_price of [undefined, '60'])
        for (const in_stock of [undefined, 'true', 'false'])
          // A common term (~10% of products), two terms, and one nothing matches (the worst case of a filtered scan).
          for (const search of [undefined, 'walnut', 'walnut lamp', 'zebra'])
            out.push({ category, min_price, max_price, in_stock, search })
  return out
}

interface Timed {
  ms: number
  rows: number
  buffers: number
  outline: string
  plan: string
}

/** The plan's nodes, outermost first, with their index names: enough to see which index drives it. */
interface PlanNode {
  'Node Type': string
  'Index Name'?: string
  Plans?: PlanNode[]
}

function outline(node: PlanNode): string[] {
  const name = `${node['Node Type']}${node['Index Name'] ? ` ${node['Index Name']}` : ''}`
  const children = (node.Plans ?? []).flatMap(outline)
  return [name, ...children]
}

async function explain(client: pg.PoolClient, text: string, params: unknown[], mode: 'custom' | 'generic'): Promise<Timed> {
  await client.query(`SET plan_cache_mode = force_${mode}_plan`)
  let best: Timed | undefined
  for (let i = 0; i < Number(options.runs); i++) {
    const [result] = (await client.query(`EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) ${text}`, params)).rows[0]['QUERY PLAN']
    const ms = result['Planning Time'] + result['Execution Time']
    const plan = result.Plan
    if (!best || ms < best.ms)
      best = {
        ms,
        rows: plan['Actual Rows'],
        buffers: plan['Shared Hit Blocks'] + plan['Shared Read Blocks'],
        outline: outline(plan).filter((n) => !/^(Result|Nested Loop|Memoize|Index Scan (products|categories)_pkey)$/.test(n)).join(' > '),
        plan: (await client.query(`EXPLAIN ${text}`, params)).rows.map((r: Record<string, string>) => r['QUERY PLAN']).join('\n'),
      }
  }
  return best!
}

const origin = { url: '/api/v1/products', protocol: 'http' as const, host: 'plans' }
const client = await pool.connect()
await client.query('SET statement_timeout = 30000')
const worst = { custom: 0, generic: 0 }
try {
  for (const ordering of options.ordering.split(',') as Ordering[])
    for (const mode of options.mode.split(','))
      for (const filters of filterCombinations()) {
        const field = sortField(ordering)
        const raw: RawProductQuery = { ...filters, ordering }
        if (mode !== 'page') raw.cursor = encodeCursor(ordering, { value: middle[field] ?? null, id: midId, backward: mode === 'before' })
        const label = new URLSearchParams(Object.entries(raw).filter(([k, v]) => v !== undefined && k !== 'cursor') as [string, string][])
        const name = `${mode.padEnd(6)} ${label}`
        if (options.only && !new RegExp(options.only).test(name)) continue
        captured.length = 0
        const request = parseProductQuery(raw)
        await (options.cached ? listProductIds(db, origin, request) : listProducts(db, origin, request)).catch(() => undefined)
        for (const [i, { text, params }] of captured.entries()) {
          const custom = await explain(client, text, params, 'custom')
          const generic = await explain(client, text, params, 'generic')
          worst.custom = Math.max(worst.custom, custom.ms)
          worst.generic = Math.max(worst.generic, generic.ms)
          // listProductIds starts the page's ids, then its count; listProducts is one statement.
          const kind = options.cached ? ['ids', 'count'][i] : 'page'
          process.stdout.write(
            `${name} [${kind}] rows ${custom.rows}: custom ${custom.ms.toFixed(2)} ms (${custom.buffers} buf) ${custom.outline}` +
              ` | generic ${generic.ms.toFixed(2)} ms (${generic.buffers} buf)${generic.outline === custom.outline ? ' same plan' : ` ${generic.outline}`}\n`,
          )
          if (options.plans) process.stdout.write(`${custom.plan}\n--- generic\n${generic.plan}\n\n`)
        }
      }
  process.stdout.write(`worst: custom ${worst.custom.toFixed(1)} ms, generic ${worst.generic.toFixed(1)} ms\n`)
} finally {
  client.release()
  await pool.end()
}
