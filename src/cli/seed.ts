import { parseArgs } from 'node:util'
import { sql } from 'drizzle-orm'
import { pino } from 'pino'
import { loadConfig } from '../config/index.js'
import { openDatabase } from './open.js'
import type { Queryable } from '../db/index.js'
import { rows } from '../db/sql.js'
import { VersionedCache, createCacheBackend } from '../cache/index.js'
import { allCatalogueScopes } from '../catalogue/invalidation.js'

/**
 * Fills the catalogue with realistic-looking data, fast: every row is generated inside PostgreSQL by
 * INSERT ... SELECT FROM generate_series, a batch at a time. Running it again tops the catalogue up to the requested
 * sizes rather than doubling it; `--reset` empties the catalogue first.
 */
const usage = 'usage: npm run seed -- [--products N] [--categories N] [--reset]\n'
const { values } = parseArgs({
  options: {
    products: { type: 'string', default: '1000' },
    categories: { type: 'string', default: '20' },
    reset: { type: 'boolean', default: false },
    help: { type: 'boolean', default: false },
  },
})
if (values.help) {
  process.stdout.write(usage)
  process.exit(0)
}
const wanted = { products: Number(values.products), categories: Number(values.categories) }
if (![wanted.products, wanted.categories].every((n) => Number.isSafeInteger(n) && n >= 0) || wanted.products > 50_000_000) {
  process.stderr.write(`seed: --products and --categories must be whole numbers (at most 50,000,000 products)\n${usage}`)
  process.exit(2)
}
if (wanted.products > 0 && wanted.categories === 0) {
  process.stderr.write('seed: products need at least one category\n')
  process.exit(2)
}

const CATEGORY_NAMES = [
  'Books', 'Electronics', 'Garden', 'Kitchen', 'Toys', 'Sports', 'Outdoors', 'Music', 'Office', 'Pets',
  'Beauty', 'Health', 'Automotive', 'Tools', 'Baby', 'Jewelry', 'Shoes', 'Clothing', 'Grocery', 'Furniture',
  'Lighting', 'Bedding', 'Bath', 'Crafts', 'Games', 'Camping', 'Cycling', 'Fitness', 'Photography', 'Audio',
  'Computers', 'Phones', 'Watches', 'Luggage', 'Stationery', 'Art Supplies', 'Party', 'Seasonal', 'Storage', 'Cleaning',
  'Appliances', 'Coffee', 'Tea', 'Wine', 'Snacks', 'Fishing', 'Climbing', 'Skiing', 'Swimming', 'Travel',
]
const ADJECTIVES = [
  'rustic', 'modern', 'classic', 'compact', 'deluxe', 'ergonomic', 'vintage', 'sleek', 'sturdy', 'portable',
  'elegant', 'handmade', 'premium', 'lightweight', 'heavy-duty', 'smart', 'cozy', 'minimal', 'bold', 'bright',
  'quiet', 'rapid', 'gentle', 'durable', 'foldable', 'wireless', 'organic', 'recycled', 'vivid', 'tiny',
]
const MATERIALS = [
  'steel', 'wooden', 'cotton', 'leather', 'ceramic', 'glass', 'bamboo', 'copper', 'wool', 'granite',
  'plastic', 'silk', 'linen', 'marble', 'aluminium', 'rubber', 'oak', 'walnut', 'brass', 'concrete',
]
const NOUNS = [
  'chair', 'table', 'lamp', 'mug', 'kettle', 'backpack', 'jacket', 'keyboard', 'speaker', 'notebook',
  'pan', 'knife', 'blanket', 'pillow', 'bottle', 'watch', 'camera', 'tent', 'bicycle', 'helmet',
  'shelf', 'desk', 'clock', 'vase', 'bowl', 'plate', 'scarf', 'glove', 'boot', 'sofa',
  'mirror', 'rug', 'candle', 'teapot', 'grinder', 'blender', 'router', 'charger', 'headphones', 'wallet',
]
const WORDS = [
  'perfect', 'for', 'everyday', 'use', 'with', 'a', 'and', 'the', 'designed', 'to', 'last', 'easy', 'clean',
  'gift', 'home', 'office', 'travel', 'kitchen', 'garden', 'kids', 'adults', 'water', 'resistant', 'warm', 'cool',
  'soft', 'strong', 'comfortable', 'stylish', 'finish', 'natural', 'colour', 'blue', 'red', 'green', 'black',
  'white', 'grey', 'yellow', 'orange', 'purple', 'set', 'of', 'two', 'three', 'pack', 'includes', 'warranty',
  'battery', 'charging', 'fast', 'slow', 'energy', 'saving', 'eco', 'friendly', 'fair', 'trade', 'local',
  'imported', 'limited', 'edition', 'bestseller', 'new', 'improved', 'version', 'quality', 'craftsmanship',
  'dishwasher', 'safe', 'machine', 'washable', 'adjustable', 'height', 'width', 'size', 'small', 'medium',
  'large', 'extra', 'outdoor', 'indoor', 'summer', 'winter', 'spring', 'autumn', 'hiking', 'camping', 'coffee',
  'tea', 'music', 'reading', 'writing', 'cooking', 'baking', 'cleaning', 'storage', 'lighting', 'decor',
]

const config = loadConfig()
const database = await openDatabase(config, { command: 'seed' })
const db = database.db
const BATCH = 100_000
const out = (line: string) => process.stdout.write(`${line}\n`)
const seconds = (since: number) => `${((performance.now() - since) / 1000).toFixed(1)} s`

async function scalar(q: Queryable, query: ReturnType<typeof sql>): Promise<number> {
  const [row] = await rows<{ n: string | number }>(q, query)
  return Number(row?.n ?? 0)
}

/** Every index on products but its primary key, to drop before a bulk load and rebuild after (much faster). */
async function secondaryIndexes(q: Queryable): Promise<{ name: string; definition: string }[]> {
  return rows(
    q,
    sql`SELECT indexname AS name, indexdef AS definition FROM pg_indexes
        WHERE schemaname = current_schema() AND tablename = 'products' AND indexname <> 'products_pkey'`,
  )
}

/** One batch: names and descriptions from the vocabularies, log-spread prices, some empty stock, two years of dates. */
function productBatch(categoryIds: number[], from: number, to: number) {
  const pick = (words: string[]) => sql`(${sql.param(words)}::text[])[1 + floor(random() * ${words.length})::int]`
  const optional = (words: string[]) => sql`CASE WHEN random() < 0.5 THEN ${pick(words)} END`
  return sql`
    INSERT INTO products (name, description, price, stock, category_id, created_at, updated_at)
    SELECT name, description, price, stock, category_id, created_at,
           least(now(), created_at + random() * interval '60 days')
    FROM (
      SELECT
        initcap(${pick(ADJECTIVES)}) || ' ' || initcap(${pick(MATERIALS)}) || ' ' || initcap(${pick(NOUNS)}) AS name,
        concat_ws(' ', initcap(${pick(WORDS)}), ${pick(WORDS)}, ${pick(ADJECTIVES)}, ${pick(NOUNS)}, ${pick(WORDS)},
                  ${pick(WORDS)}, ${pick(MATERIALS)}, ${optional(WORDS)}, ${optional(WORDS)}, ${optional(NOUNS)},
                  ${optional(WORDS)}, ${optional(ADJECTIVES)}) || '.' AS description,
        round(exp(random() * ln(2500.0))::numeric - 0.01, 2) AS price,
        CASE WHEN random() < 0.08 THEN 0 ELSE 1 + floor(random() * 300)::int END AS stock,
        (${sql.param(categoryIds)}::int[])[1 + (g % ${categoryIds.length})] AS category_id,
        now() - random() * interval '730 days' AS created_at
      FROM generate_series(${from}::int, ${to}::int) AS g
    ) AS generated`
}

const started = performance.now()
try {
  await database.migrate()
  if (values.reset) {
    // Orders and carts refer to products: emptying the catalogue empties them too (a development tool).
    await db.execute(sql`TRUNCATE products, categories, cart_items, orders RESTART IDENTITY CASCADE`)
    out('reset: emptied categories, products, carts and orders')
  }

  const names = Array.from({ length: wanted.categories }, (_, i) => {
    const base = CATEGORY_NAMES[i % CATEGORY_NAMES.length]!
    return i < CATEGORY_NAMES.length ? base : `${base} ${Math.floor(i / CATEGORY_NAMES.length) + 1}`
  })
  const createdCategories = await scalar(
    db,
    sql`WITH inserted AS (
          INSERT INTO categories (name, description)
          SELECT name, 'Everything for ' || lower(name) || '.' FROM unnest(${sql.param(names)}::text[]) AS name
          ON CONFLICT ((lower(name))) DO NOTHING RETURNING 1)
        SELECT count(*) AS n FROM inserted`,
  )
  const categoryIds = (await rows<{ id: number }>(db, sql`SELECT id FROM categories ORDER BY id`)).map((r) => Number(r.id))
  out(`categories: ${createdCategories} created, ${categoryIds.length} in total`)

  const existing = await scalar(db, sql`SELECT count(*) AS n FROM products WHERE is_active`)
  const missing = Math.max(0, wanted.products - existing)
  if (missing === 0) {
    out(`products: already ${existing.toLocaleString('en')} (asked for ${wanted.products.toLocaleString('en')}), nothing to add`)
  } else {
    const insertStarted = performance.now()
    const bulk = missing >= 50_000 && database.kind === 'postgres'
    await db.transaction(async (tx) => {
      // One transaction: a failed or interrupted load leaves the catalogue (and its indexes) as they were.
      const indexes = bulk ? await secondaryIndexes(tx) : []
      // The pool bounds statements for request handlers; a bulk load's statements are legitimately long.
      await tx.execute(sql`SET LOCAL statement_timeout = 0`)
      if (bulk) {
        await tx.execute(sql`SET LOCAL maintenance_work_mem = '1GB'`)
        for (const index of indexes) await tx.execute(sql.raw(`DROP INDEX ${index.name}`))
      }
      for (let from = 1; from <= missing; from += BATCH) {
        const to = Math.min(missing, from + BATCH - 1)
        await tx.execute(productBatch(categoryIds, from, to))
        out(`products: ${to.toLocaleString('en')} / ${missing.toLocaleString('en')} (${seconds(insertStarted)})`)
      }
      if (bulk) {
        const indexStarted = performance.now()
        for (const index of indexes) await tx.execute(sql.raw(index.definition))
        out(`indexes: rebuilt ${indexes.length} (${seconds(indexStarted)})`)
      }
    })
    out(`products: ${missing.toLocaleString('en')} created in ${seconds(insertStarted)}, ${(existing + missing).toLocaleString('en')} in total`)
  }

  // VACUUM too: after a bulk load it sets hint bits and the visibility map, so counts can be index-only at once.
  await db.execute(sql`VACUUM (ANALYZE) categories`)
  await db.execute(sql`VACUUM (ANALYZE) products`)
  out('vacuumed and analyzed')
  if (config.redisUrl) {
    // Cached catalogue answers of running servers are now stale: move every catalogue scope to a new generation.
    const backend = createCacheBackend(config.redisUrl, config.redisPrefix, config.cacheTtlSeconds)
    // The client does not queue commands while it connects: wait until Redis answers.
    const deadline = Date.now() + 5_000
    let reachable = false
    while (!reachable && Date.now() < deadline) {
      reachable = await backend.ping().then(() => true, () => new Promise<boolean>((done) => setTimeout(() => done(false), 100)))
    }
    if (reachable) {
      const cache = new VersionedCache(backend, config.cacheTtlSeconds, pino({ level: 'warn' }))
      await cache.invalidate((mark) => mark(allCatalogueScopes))
      out('cache: catalogue answers invalidated')
    } else {
      out(`cache: Redis unreachable; cached catalogue answers may stay stale for up to ${config.cacheTtlSeconds} s`)
    }
    await backend.close()
  }
  out(`done in ${seconds(started)}`)
} catch (err) {
  process.stderr.write(`seed: ${(err as Error).message}\n`)
  process.exitCode = 1
} finally {
  await database.close()
}
