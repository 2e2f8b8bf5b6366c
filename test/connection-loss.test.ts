/**
 * A PostgreSQL connection that dies in the middle of a request (a backend terminated, the network path cut) costs at
 * most the requests using it: they answer 503 with Retry-After, the server process stays up, and once PostgreSQL is
 * reachable again the next requests succeed without a restart. Run against a REAL server process whose database
 * path goes through a TCP proxy this test cuts, while orders are being placed.
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import pg from 'pg'
import { afterAll, describe, expect, it } from 'vitest'
import { eq, sql, sum } from 'drizzle-orm'
import { categories, orderItems, products } from '../src/db/schema.js'
import { rows } from '../src/db/sql.js'
import { PASSWORD, createTestApp, realBackend, testDatabase, uniqueEmail } from './helpers.js'
import { type Exited, type Server, postJson, startServer, stopServer } from './server-process.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'

const cleanup: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const step of cleanup.reverse()) await step().catch(() => {})
})

/** Longest a request may take while the database is gone: a 503 must come quickly, never a hang. */
const BOUND_MS = 15_000

interface Answer {
  route: string
  status: number
  retryAfter: string | null
  body: string
  ms: number
}

async function call(server: Server, method: string, path: string, token: string, body?: unknown): Promise<Answer> {
  const started = Date.now()
  try {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      signal: AbortSignal.timeout(BOUND_MS),
    })
    return { route: `${method} ${path}`, status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text(), ms: Date.now() - started }
  } catch (err) {
    // No answer at all (connection refused or reset, or the bound passed): recorded as status 0.
    return { route: `${method} ${path}`, status: 0, retryAfter: null, body: String(err), ms: Date.now() - started }
  }
}

/** Waits for `condition`, failing at once (with its last words) if the server process has exited meanwhile. */
async function until(server: Server, condition: () => boolean, what: string, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let exited: Exited | undefined
  void server.exited.then((e) => (exited = e))
  while (!condition()) {
    if (exited) throw new Error(`the server exited (${exited.code ?? exited.signal}) waiting for ${what}: ${exited.stderr.slice(-1500)}`)
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

describe.runIf(realBackend)('a PostgreSQL connection lost mid-request', () => {
  it('costs only the requests using it (503 + Retry-After), never the process; 2xx again once PostgreSQL is back', { timeout: 180_000 }, async () => {
    const db = await testDatabase()
    cleanup.push(db.drop, () => db.database.close())
    const initialStock = 100_000
    const [category] = await db.database.db.insert(categories).values({ name: `loss-${randomBytes(4).toString('hex')}` }).returning()
    const [product] = await db.database.db
      .insert(products)
      .values({ name: 'Contended', price: '2.50', stock: initialStock, categoryId: category!.id })
      .returning()

    const proxy = await new TcpProxy(targetOf(db.url!, 5432)).start()
    cleanup.push(() => proxy.cut())
    const dataDir = mkdtempSync(join(tmpdir(), 'sf-loss-'))
    cleanup.push(async () => rmSync(dataDir, { recursive: true, force: true }))
    const server = await startServer({
      NODE_ENV: 'test',
      DATA_DIR: dataDir,
      DATABASE_URL: proxy.url(db.url!),
      REDIS_URL: process.env.REDIS_URL,
      REDIS_PREFIX: `sftest:${randomBytes(4).toString('hex')}:`,
      ARGON2_MEMORY_KIB: '1024',
      DB_POOL_SIZE: '8',
    })
    cleanup.push(() => stopServer(server, 'SIGKILL'))

    const buyers: string[] = []
    for (let i = 0; i < 24; i += 8) {
      buyers.push(
        ...(await Promise.all(
          Array.from({ length: 8 }, async () => {
            const email = uniqueEmail('loss')
            expect((await postJson(`${server.url}/api/v1/auth/register`, { email, password: PASSWORD })).status).toBe(201)
            const login = await postJson(`${server.url}/api/v1/auth/token`, { email, password: PASSWORD })
            expect(login.status).toBe(200)
            return login.body.access as string
          }),
        )),
      )
    }

    // /health/live is probed throughout: the process must answer it at every moment.
    const liveFailures: string[] = []
    let probing = true
    const prober = (async () => {
      while (probing) {
        const res = await fetch(`${server.url}/health/live`, { signal: AbortSignal.timeout(3_000) }).catch((err: Error) => err)
        if (res instanceof Error || res.status !== 200) liveFailures.push(res instanceof Error ? res.message : String(res.status))
        await new Promise((r) => setTimeout(r, 200))
      }
    })()

    // Every buyer keeps adding one unit and ordering it; an order is placed only after its add succeeded.
    const answers: Answer[] = []
    let placed = 0
    let running = true
    const load = Promise.all(
      buyers.map(async (access) => {
        while (running) {
          const added = await call(server, 'POST', '/api/v1/cart/items', access, { product_id: product!.id, quantity: 1 })
          answers.push(added)
          // A failed request is retried a moment later, as a client would (not in a tight loop).
          if (added.status !== 201) {
            await new Promise((r) => setTimeout(r, 100))
            continue
          }
          const order = await call(server, 'POST', '/api/v1/orders', access, {})
          answers.push(order)
          if (order.status === 201) placed++
        }
      }),
    )

    await until(server, () => placed >= 30, 'orders before the fault')
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL })
    await admin.connect()
    cleanup.push(() => admin.end())
    const dbName = new URL(db.url!).pathname.slice(1)
    const terminated = await admin.query(
      'SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()',
      [dbName],
    )
    expect(terminated.rowCount).toBeGreaterThan(0)
    const afterTerminate = placed
    await until(server, () => placed >= afterTerminate + 30, 'orders after the backends were terminated')

    await proxy.cut()
    const cutAt = answers.length
    // Held until every buyer has met the cut twice, then restored: the pool has lost its connections by then.
    await until(server, () => answers.slice(cutAt).filter((a) => a.status === 503).length >= 2 * buyers.length, 'requests refused during the cut')
    await proxy.restore()
    const afterRestore = placed
    await until(server, () => placed >= afterRestore + 30, 'orders after PostgreSQL came back')
    running = false
    await load
    probing = false
    await prober

    expect(server.child.exitCode).toBeNull()
    expect(liveFailures).toEqual([])
    const unexpected = answers.filter((a) => a.status !== 201 && a.status !== 503)
    expect(unexpected.slice(0, 5)).toEqual([])
    const failed = answers.filter((a) => a.status === 503)
    // The cut surely failed requests; each said so properly.
    expect(answers.slice(cutAt).some((a) => a.status === 503)).toBe(true)
    for (const a of failed) {
      expect(a.retryAfter).toBe('5')
      expect(JSON.parse(a.body)).toEqual({ detail: expect.any(String) })
    }
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(BOUND_MS)
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200)

    // Every unit that left the stock is in exactly one order, whatever was cut when.
    const [stock] = await db.database.db.select({ stock: products.stock }).from(products).where(eq(products.id, product!.id))
    const [sold] = await db.database.db.select({ units: sum(orderItems.quantity) }).from(orderItems).where(eq(orderItems.productId, product!.id))
    expect(stock!.stock + Number(sold!.units)).toBe(initialStock)
    expect(Number(sold!.units)).toBeGreaterThanOrEqual(placed)
  })
})

describe.runIf(realBackend)('a connection that dies as a transaction begins', () => {
  it('is discarded, not leaked: the pool keeps serving transactions afterwards', async () => {
    // Two connections: leaking them (a client whose BEGIN failed never released) would block every later transaction.
    const t = await createTestApp({ poolSize: 2 })
    cleanup.push(() => t.close())
    const u = await t.user()
    const admin = new pg.Client({ connectionString: process.env.DATABASE_URL })
    await admin.connect()
    cleanup.push(() => admin.end())
    const [{ name: dbName }] = (await rows<{ name: string }>(t.ctx.db, sql`SELECT current_database() AS name`)) as [{ name: string }]
    const patch = () => t.request('PATCH', '/api/v1/me', { token: u.access, body: { first_name: 'Again' } })
    for (let i = 0; i < 20; i++) {
      // The terminated backends' pooled clients are idle and not yet aware: the next transaction begins on one.
      await admin.query('SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()', [dbName])
      expect([200, 503]).toContain((await patch()).statusCode)
    }
    // A leaked client is never given back: with both leaked, every request would wait for the pool's 5 s timeout.
    const answers: { status: number; ms: number }[] = []
    for (let i = 0; i < 3 && answers.at(-1)?.status !== 200; i++) {
      const started = Date.now()
      answers.push({ status: (await patch()).statusCode, ms: Date.now() - started })
    }
    expect(answers.at(-1)?.status).toBe(200)
    expect(Math.max(...answers.map((a) => a.ms))).toBeLessThan(2_000)
  })
})
