/**
 * One user's notifications commit in id order, whichever instance or staff member stores them, so that "everything
 * after the highest id I have" (a socket's `since`, and the catch-up after a Redis outage) never skips one that
 * committed late. Real PostgreSQL only: the embedded database runs one transaction at a time.
 */
import { describe, expect, it } from 'vitest'
import { sql } from 'drizzle-orm'
import { notificationsAfter, recordStatusChange } from '../src/notifications/service.js'
import { type TestApp, type TestUser, realBackend, twoInstances } from './helpers.js'
import { type Client, connected, createOrder } from './notifications-helpers.js'
import { until } from './support/wait.js'
import { addToCart, makeProduct } from './orders-fixtures.js'

const pair = twoInstances({ listen: true })


/** Whether some backend of this test's database is waiting for an advisory lock. */
async function someoneWaitsOnAdvisoryLock(t: TestApp): Promise<boolean> {
  const result = (await t.ctx.db.execute(
    sql`SELECT count(*)::int AS n FROM pg_stat_activity
         WHERE datname = current_database() AND wait_event_type = 'Lock' AND wait_event = 'advisory'`,
  )) as unknown as { rows: Array<{ n: number }> }
  return result.rows[0]!.n > 0
}

/** What a socket connecting with `since` is sent before its pong: the replay. */
async function replayAfter(t: TestApp, user: TestUser, since: number): Promise<number[]> {
  const client = await connected(t, { token: user.access, since })
  const ids = client.notifications.map((n) => n.id)
  await client.close()
  return ids
}

const statusOf = (t: TestApp, staff: TestUser, orderId: number, status: string) =>
  t.request('PATCH', `/api/v1/orders/${orderId}/status`, { token: staff.access, body: { status } })

describe.runIf(realBackend)('one user’s notifications commit in id order', () => {
  /**
   * A status change of the user's order is held open right after storing its notification (a slow commit); a second
   * write for the same user (`second`) runs meanwhile. It must wait for the first: had it committed first, a client
   * reconnecting in between would see the higher id, then ask for what comes after it and never get the lower one.
   */
  async function heldAgainst(second: (user: TestUser) => Promise<{ statusCode: number }>, user: TestUser, orderId: number) {
    // What a client reconnecting with `since` is replayed at that moment: its user's committed ids above `since`.
    const replay = async (since: number) => (await notificationsAfter(pair.b.ctx.db, user.id, since, 100)).map((n) => n.id)
    const since = (await replay(0)).at(-1) ?? 0
    let release!: () => void
    const held = new Promise<void>((resolve) => (release = resolve))
    let stored!: () => void
    const storedFirst = new Promise<void>((resolve) => (stored = resolve))
    const slow = pair.a.ctx.db.transaction(async (tx) => {
      await recordStatusChange(tx, { orderId, userId: user.id, status: 'shipped', previousStatus: 'pending' })
      stored()
      await held
    })
    await storedFirst
    let finished = false
    const fast = second(user).then((res) => ((finished = true), res))
    await until('the second write to commit or to wait for the first', async () => finished || (await someoneWaitsOnAdvisoryLock(pair.a)))
    const seen = await replay(since)
    release()
    await slow
    expect((await fast).statusCode).toBeLessThan(300)
    const after = await replay(seen.at(-1) ?? since)
    const all = await replay(since)
    expect(all).toHaveLength(2)
    expect([...seen, ...after]).toEqual(all)
  }

  it('a status change waits for another one of the same user that stored its notification first', async () => {
    const staff = await pair.a.user({ staff: true })
    const user = await pair.a.user()
    const [first, second] = [await createOrder(pair.a, user.id), await createOrder(pair.a, user.id)]
    await heldAgainst(() => statusOf(pair.b, staff, second, 'shipped'), user, first)
  })

  it('an order placement waits for a status change of the same user that stored its notification first', async () => {
    const user = await pair.a.user()
    const first = await createOrder(pair.a, user.id)
    const product = await makeProduct(pair.a, { stock: 3 })
    await addToCart(pair.b, user, product.id, 1)
    await heldAgainst((u) => pair.b.request('POST', '/api/v1/orders', { token: u.access }), user, first)
  })

  it('another user’s writes do not wait', async () => {
    const staff = await pair.a.user({ staff: true })
    const [user, other] = [await pair.a.user(), await pair.a.user()]
    const orderId = await createOrder(pair.a, user.id)
    const otherOrder = await createOrder(pair.a, other.id)
    await pair.a.ctx.db.transaction(async (tx) => {
      await recordStatusChange(tx, { orderId, userId: user.id, status: 'shipped', previousStatus: 'pending' })
      expect((await statusOf(pair.b, staff, otherOrder, 'shipped')).statusCode).toBe(200)
    })
  })

  it('many concurrent status changes through two instances: a client reconnecting with since at any point misses nothing', async () => {
    const staff = await pair.a.user({ staff: true })
    const user = await pair.a.user()
    const rounds = 60
    const orders = await Promise.all(Array.from({ length: rounds * 2 }, () => createOrder(pair.a, user.id)))
    let done = false
    const burst = (async () => {
      for (let i = 0; i < rounds; i++) {
        const results = await Promise.all([
          statusOf(pair.a, staff, orders[2 * i]!, 'shipped'),
          statusOf(pair.b, staff, orders[2 * i + 1]!, i % 2 ? 'cancelled' : 'shipped'),
        ])
        for (const res of results) expect(res.statusCode).toBe(200)
      }
    })().finally(() => (done = true))

    // Reconnects over and over, alternating instances, each time with the last id it got: the replay, then at least
    // one live push (two instances publish, so pushes can overtake each other on the way), or the end of the burst.
    const seen: number[] = []
    for (let i = 0; !done; i++) {
      const client: Client = await connected(i % 2 ? pair.a : pair.b, { token: user.access, since: seen.at(-1) ?? 0 })
      const replayed = client.notifications.length
      await until('a live push or the end', () => done || client.notifications.length > replayed)
      await client.close()
      seen.push(...client.notifications.map((n) => n.id))
    }
    await burst
    seen.push(...(await replayAfter(pair.a, user, seen.at(-1) ?? 0)))
    const all = await replayAfter(pair.b, user, 0)
    expect(all).toHaveLength(rounds * 2)
    expect(seen).toEqual(all)
  })
})
