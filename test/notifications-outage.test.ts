/**
 * Redis cut under order traffic, on real servers: two instances, each reaching Redis through its own TCP proxy, so
 * a test cuts both (Redis down) or one (one instance partitioned). Whatever is stored reaches every socket of its
 * user exactly once when Redis is back, and a revocation made on another instance meanwhile is honoured at once.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { asc, eq } from 'drizzle-orm'
import { notifications } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp, realBackend } from './helpers.js'
import { type Client, connected, createOrder } from './notifications-helpers.js'
import { until } from './support/wait.js'
import { addToCart, makeProduct } from './orders-fixtures.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'


describe.runIf(realBackend)('notifications while Redis is cut', () => {
  const redis = process.env.REDIS_URL!
  let proxyA: TcpProxy
  let proxyB: TcpProxy
  let a: TestApp
  let b: TestApp
  let staff: TestUser
  const opened: Client[] = []

  beforeAll(async () => {
    proxyA = await new TcpProxy(targetOf(redis, 6379)).start()
    proxyB = await new TcpProxy(targetOf(redis, 6379)).start()
    a = await createTestApp({ listen: true, config: { redisUrl: proxyA.url(redis) } })
    b = await createTestApp({ listen: true, shared: a, config: { redisUrl: proxyB.url(redis) } })
    staff = await a.user({ staff: true })
  })
  afterAll(async () => {
    for (const client of opened) client.ws.terminate()
    await b?.close()
    await a?.close()
    await Promise.all([proxyA?.cut(), proxyB?.cut()])
  })

  const ready = async (t: TestApp) => (await t.request('GET', '/health/ready')).statusCode === 200

  async function socket(t: TestApp, user: TestUser, query: Record<string, string | number> = {}): Promise<Client> {
    const client = await connected(t, { token: user.access, ...query })
    opened.push(client)
    return client
  }

  const stored = async (user: TestUser) =>
    (await a.ctx.db.select({ id: notifications.id }).from(notifications).where(eq(notifications.userId, user.id)).orderBy(asc(notifications.id))).map(
      (row) => row.id,
    )

  /**
   * One user's traffic through one instance, as a staff member and the customer would make it there: a new order
   * moved to shipped and delivered, or (every third round, on the instance that places) a placement. Two lanes of
   * one user run at once, so one user's notifications are stored concurrently through both instances.
   */
  function lane(t: TestApp, user: TestUser, places: boolean) {
    let round = 0
    return async () => {
      round++
      if (places && round % 3 === 0) {
        const product = await makeProduct(t, { stock: 5 })
        await addToCart(t, user, product.id, 1)
        const placed = await t.request('POST', '/api/v1/orders', { token: user.access })
        expect(placed.statusCode).toBe(201)
        return
      }
      const orderId = await createOrder(t, user.id)
      for (const status of ['shipped', 'delivered']) {
        const res = await t.request('PATCH', `/api/v1/orders/${orderId}/status`, { token: staff.access, body: { status } })
        expect(res.statusCode).toBe(200)
      }
    }
  }

  /** Runs every lane `rounds` times, or until `ms` have passed (at least once each), all lanes at once. */
  const run = (lanes: Array<() => Promise<void>>, limit: { rounds: number } | { ms: number }) =>
    Promise.all(
      lanes.map(async (step) => {
        const deadline = 'ms' in limit ? Date.now() + limit.ms : Infinity
        for (let i = 0; 'rounds' in limit ? i < limit.rounds : i === 0 || Date.now() < deadline; i++) await step()
      }),
    )

  /**
   * Waits until every socket holds every stored notification of its user, then makes one more round through each
   * instance (each publishes in order, queued messages first), so a late duplicate would show; then asserts that
   * every socket received exactly its user's stored notifications, each once, in id order.
   */
  async function expectEverySocketComplete(users: TestUser[], sockets: Map<TestUser, Client[]>, lanes: Array<() => Promise<void>>) {
    const missing = async () => {
      const report: string[] = []
      for (const user of users) {
        const ids = await stored(user)
        for (const [i, client] of sockets.get(user)!.entries()) {
          const got = new Set(client.notifications.map((n) => n.id))
          const lost = ids.filter((id) => !got.has(id))
          if (lost.length) report.push(`user ${user.id} socket ${i}: ${lost.length} of ${ids.length} missing`)
        }
      }
      return report
    }
    try {
      await until('every socket to hold every stored notification', async () => (await missing()).length === 0, 30_000)
    } catch (err) {
      throw new Error(`${(err as Error).message}: ${(await missing()).join('; ')}`, { cause: err })
    }
    await run(lanes, { rounds: 1 })
    await until('the last round on every socket', async () => (await missing()).length === 0, 10_000)
    for (const user of users) {
      const ids = await stored(user)
      for (const client of sockets.get(user)!) {
        expect(client.ws.readyState).toBe(client.ws.OPEN)
        expect(client.notifications.map((n) => n.id)).toEqual(ids)
      }
    }
  }

  it('Redis cut for seconds mid-burst: every socket ends with every notification of its user, exactly once, in order', async () => {
    await until('both instances ready', async () => (await ready(a)) && (await ready(b)))
    const users = await Promise.all([a.user(), a.user(), a.user()])
    const sockets = new Map<TestUser, Client[]>()
    for (const user of users) sockets.set(user, [await socket(a, user), await socket(b, user)])
    const lanes = users.flatMap((user) => [lane(a, user, true), lane(b, user, false)])

    await run(lanes, { rounds: 2 })
    await Promise.all([proxyA.cut(), proxyB.cut()])
    // Connected while Redis is away, replaying the user's whole history: it must still end up complete.
    const late = users[0]
    const lateStart = run(lanes, { ms: 3_000 })
    sockets.get(late)!.push(await socket(b, late, { since: 0 }))
    await lateStart
    await Promise.all([proxyA.restore(), proxyB.restore()])
    await run(lanes, { rounds: 2 })

    await expectEverySocketComplete(users, sockets, lanes)
  })

  it('one instance cut off from Redis: both sides end with every notification, exactly once', async () => {
    await until('both instances ready', async () => (await ready(a)) && (await ready(b)))
    const users = await Promise.all([a.user(), a.user()])
    const sockets = new Map<TestUser, Client[]>()
    for (const user of users) sockets.set(user, [await socket(a, user), await socket(b, user)])
    const lanes = users.flatMap((user) => [lane(a, user, true), lane(b, user, false)])

    await run(lanes, { rounds: 2 })
    // B alone loses Redis: what B stores must reach A's sockets later, what A stores B must catch up on.
    await proxyB.cut()
    await run(lanes, { ms: 3_000 })
    await proxyB.restore()
    await run(lanes, { rounds: 2 })

    await expectEverySocketComplete(users, sockets, lanes)
  })

  it('a revocation made on another instance while Redis is cut is honoured at once, and closes the user’s sockets', async () => {
    await until('both instances ready', async () => (await ready(a)) && (await ready(b)))
    const user = await a.user()
    const bystander = await a.user()
    const me = (t: TestApp, u: TestUser) => t.request('GET', '/api/v1/me', { token: u.access }).then((r) => r.statusCode)
    // A mirrors both sessions before the cut.
    expect(await me(a, user)).toBe(200)
    expect(await me(a, bystander)).toBe(200)
    const onA = await socket(a, user)
    const bystanderOnA = await socket(a, bystander)

    await proxyA.cut()
    await until('A to notice', async () => !(await ready(a)))
    const revoked = await b.request('POST', '/api/v1/auth/sessions/revoke', { token: user.access })
    expect(revoked.statusCode).toBe(204)
    expect(await me(a, user)).toBe(401)
    expect(await me(a, bystander)).toBe(200)

    await proxyA.restore()
    let closed: { code: number; reason: string } | undefined
    void onA.closed.then((c) => (closed = c))
    await until('the revoked user’s socket on A to close', () => closed !== undefined, 30_000)
    expect(closed).toEqual({ code: 4401, reason: 'Session revoked' })
    await until('A ready again', () => ready(a), 30_000)
    expect(await me(a, user)).toBe(401)
    expect(bystanderOnA.ws.readyState).toBe(bystanderOnA.ws.OPEN)
  })
})
