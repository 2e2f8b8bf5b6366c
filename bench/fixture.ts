/**
 * Everything the scenarios need, made before a server starts (the embedded database belongs to one process at a
 * time): the seeded catalogue, users with tokens, products to sell, and one pending order per socket user.
 */
import { execFileSync } from 'node:child_process'
import { and, eq, inArray, sql } from 'drizzle-orm'
import { createDatabase, type Database } from '../src/db/index.js'
import { categories, orders, products, users } from '../src/db/schema.js'
import { createHasher } from '../src/auth/passwords.js'
import { TokenService } from '../src/auth/tokens.js'
import { type Ordering, encodeCursor, orderings, sortField } from '../src/catalogue/query.js'

export const BENCH_PASSWORD = 'bench-Passphrase-2026'
/**
 * The order and add-to-cart scenarios (and their pgbench limits) buy one random product of these per order, so
 * orders rarely wait on each other's row locks, with stock that no run can sell out: every order changes stock.
 */
const ORDER_PRODUCTS = 10_000
const UNITS_EACH = 10_000
/** pgbench's clients, one buyer each (bench/limit.ts). */
export const PGBENCH_CLIENTS = 10

export interface Fixture {
  productCount: number
  sampleIds: number[]
  filters: string[]
  /** Keyset pages from random positions in the catalogue, in every ordering, some filtered by category. */
  cursors: string[]
  searchTerm: string
  medianPrice: string
  loginEmails: string[]
  /** Buyers with empty carts, consecutive ids from `firstId`: two per connection (bench/load.ts says why). */
  buyers: { firstId: number; tokens: string[] }
  /** Consecutive product ids on sale for the order scenarios. */
  orderProducts: { first: number; count: number }
  initialUnits: number
  socketUsers: { token: string; orderId: number }[]
  staffToken: string
}

async function open(env: Record<string, string>): Promise<Database> {
  const database = await createDatabase({ url: env.DATABASE_URL, dataDir: env.DATABASE_URL ? undefined : env.DATA_DIR })
  await database.migrate()
  return database
}

const rowsOf = <T>(result: unknown) => (result as { rows: T[] }).rows

async function insertUsers(database: Database, prefix: string, count: number, hash: string, staff = false) {
  const ids: number[] = []
  for (let start = 0; start < count; start += 1000) {
    const rows = Array.from({ length: Math.min(1000, count - start) }, (_, i) => ({
      email: `${prefix}-${start + i}@bench.example.com`,
      password: hash,
      isStaff: staff,
    }))
    const inserted = await database.db.insert(users).values(rows).returning({ id: users.id })
    ids.push(...inserted.map((r) => r.id))
  }
  return ids
}

function filterCombos(categoryIds: number[]): string[] {
  const orderings = ['', 'price', '-price', 'name', '-name', 'created_at', '-created_at']
  return Array.from({ length: 200 }, (_, i) => {
    const params = new URLSearchParams()
    params.set('category', String(categoryIds[i % categoryIds.length]))
    if (i % 3 === 0) params.set('min_price', String((i % 10) * 10))
    if (i % 4 === 0) params.set('max_price', String((i % 10) * 10 + 100))
    if (i % 5 === 0) params.set('in_stock', 'true')
    const ordering = orderings[i % orderings.length]!
    if (ordering) params.set('ordering', ordering)
    if (i % 2 === 1) params.set('page', String(1 + (i % 3)))
    return `/api/v1/products?${params}`
  })
}

interface Position {
  id: number
  price: string
  name: string
  created_at: string
}

function cursorPaths(positions: Position[], categoryIds: number[]): string[] {
  return positions.map((at, i) => {
    const ordering: Ordering = orderings[i % orderings.length]!
    const field = sortField(ordering)
    const value = field === 'id' ? null : at[field]
    const params = new URLSearchParams({ ordering, cursor: encodeCursor(ordering, { value, id: at.id, backward: i % 3 === 0 }) })
    if (i % 4 === 0) params.set('category', String(categoryIds[i % categoryIds.length]))
    return `/api/v1/products?${params}`
  })
}

export async function prepare(
  env: Record<string, string>,
  options: { products: number; connections: number; sockets: number },
  scenarios: string[],
): Promise<Fixture> {
  execFileSync(process.execPath, ['--import', 'tsx', 'src/cli/seed.ts', '--products', String(options.products), '--categories', '50', '--reset'], {
    env: { ...process.env, ...env },
    stdio: 'inherit',
  })
  const database = await open(env)
  try {
    const db = database.db
    const hash = await createHasher(19456).hash(BENCH_PASSWORD)
    const tokens = new TokenService(env.JWT_SECRET!, { access: 3600, refresh: 3600 })
    const token = (id: number) => tokens.issue('access', id, 0).token

    const categoryIds = (await db.select({ id: categories.id }).from(categories).orderBy(categories.id)).map((r) => r.id)
    const sample = await db.execute(sql`SELECT id FROM products WHERE is_active ORDER BY random() LIMIT 1000`)
    const sampleIds = rowsOf<{ id: number }>(sample).map((r) => Number(r.id))
    const positions = rowsOf<Position>(
      await db.execute(sql`SELECT id, price::text AS price, name,
          to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at
        FROM products WHERE is_active ORDER BY random() LIMIT 200`),
    )
    const [first] = await db.select({ name: products.name }).from(products).limit(1)
    const searchTerm = (first?.name ?? 'a').split(/\s+/)[0]!.toLowerCase()
    const median = await db.execute(sql`SELECT (percentile_disc(0.5) WITHIN GROUP (ORDER BY price))::text AS price FROM products`)
    const medianPrice = rowsOf<{ price: string | null }>(median)[0]?.price ?? '0.00'

    const [staffId] = await insertUsers(database, 'staff', 1, hash, true)
    const loginIds = await insertUsers(database, 'login', 50, hash)
    const buyerIds = await insertUsers(database, 'buyer', Math.max(2 * options.connections, PGBENCH_CLIENTS), hash)
    if (buyerIds.at(-1)! - buyerIds[0]! !== buyerIds.length - 1) throw new Error('bench buyers did not get consecutive ids')

    const [benchCategory] = await db.insert(categories).values({ name: 'Bench orders' }).returning({ id: categories.id })
    const [range] = rowsOf<{ first: number; last: number }>(
      await db.execute(sql`WITH made AS (
          INSERT INTO products (name, price, stock, category_id)
          SELECT 'Bench item ' || i, 9.99, ${UNITS_EACH}, ${benchCategory!.id} FROM generate_series(1, ${ORDER_PRODUCTS}) AS i
          RETURNING id)
        SELECT min(id)::int AS first, max(id)::int AS last FROM made`),
    )
    if (range!.last - range!.first !== ORDER_PRODUCTS - 1) throw new Error('bench order products did not get consecutive ids')

    const socketUsers: Fixture['socketUsers'] = []
    if (scenarios.includes('ws-fanout')) {
      const ids = await insertUsers(database, 'listener', options.sockets, hash)
      for (let start = 0; start < ids.length; start += 1000) {
        const chunk = ids.slice(start, start + 1000)
        const placed = await db
          .insert(orders)
          .values(chunk.map((userId) => ({ userId, totalPrice: '0.00', shippingAddress: { line1: '', line2: '', city: '', state: '', postal_code: '', country: '' } })))
          .returning({ id: orders.id, userId: orders.userId })
        socketUsers.push(...placed.map((o) => ({ token: token(o.userId), orderId: o.id })))
      }
    }
    await db.execute(sql`VACUUM (ANALYZE)`)

    return {
      productCount: options.products,
      sampleIds,
      filters: filterCombos(categoryIds),
      cursors: cursorPaths(positions, categoryIds),
      searchTerm,
      medianPrice,
      loginEmails: loginIds.map((_, i) => `login-${i}@bench.example.com`),
      buyers: { firstId: buyerIds[0]!, tokens: buyerIds.map(token) },
      orderProducts: { first: range!.first, count: ORDER_PRODUCTS },
      initialUnits: ORDER_PRODUCTS * UNITS_EACH,
      socketUsers,
      staffToken: token(staffId!),
    }
  } finally {
    await database.close()
  }
}

const orderProductRange = (f: Fixture) => sql`BETWEEN ${f.orderProducts.first} AND ${f.orderProducts.first + f.orderProducts.count - 1}`

/** Stock left plus units sold must equal the units put on sale: no unit sold twice, none lost. */
export async function verifyOrders(env: Record<string, string>, fixture: Fixture): Promise<string> {
  const database = await open(env)
  try {
    const ids = orderProductRange(fixture)
    const [row] = rowsOf<{ stock: number; sold: number; negative: number }>(
      await database.db.execute(sql`
        SELECT (SELECT coalesce(sum(stock), 0) FROM products WHERE id ${ids})::int AS stock,
               (SELECT coalesce(sum(oi.quantity), 0) FROM order_items oi JOIN orders o ON o.id = oi.order_id
                 WHERE oi.product_id ${ids} AND o.status <> 'cancelled')::int AS sold,
               (SELECT count(*) FROM products WHERE id ${ids} AND stock < 0)::int AS negative`),
    )
    const ok = Number(row!.stock) + Number(row!.sold) === fixture.initialUnits && Number(row!.negative) === 0
    return `stock ${row!.stock} + sold ${row!.sold} ${ok ? '=' : '≠'} ${fixture.initialUnits} ${ok ? '(consistent)' : '(INCONSISTENT)'}`
  } finally {
    await database.close()
  }
}

/**
 * Puts the order products, carts and socket orders back as they were, so the next pass measures the same work, then
 * VACUUM (ANALYZE): autovacuum may be off (it is on the project's machine), and stale statistics on the churned cart
 * and order tables change the plans measured.
 */
export async function resetBetweenPasses(env: Record<string, string>, fixture: Fixture): Promise<void> {
  const database = await open(env)
  try {
    const db = database.db
    const ids = orderProductRange(fixture)
    await db.execute(sql`DELETE FROM orders WHERE id IN (SELECT order_id FROM order_items WHERE product_id ${ids})`)
    await db.execute(sql`DELETE FROM cart_items WHERE product_id ${ids}`)
    await db.execute(sql`UPDATE products SET stock = ${UNITS_EACH} WHERE id ${ids}`)
    fixture.initialUnits = fixture.orderProducts.count * UNITS_EACH
    if (fixture.socketUsers.length) {
      await db.execute(sql`DELETE FROM order_status_history WHERE order_id IN (SELECT id FROM orders WHERE status <> 'pending')`)
      await db
        .update(orders)
        .set({ status: 'pending' })
        .where(and(eq(orders.totalPrice, '0.00'), inArray(orders.status, ['shipped', 'delivered'])))
    }
    await db.execute(sql`VACUUM (ANALYZE)`)
  } finally {
    await database.close()
  }
}
