import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { TokenService } from '../src/auth/tokens.js'
import { NOTIFICATIONS_CHANNEL } from '../src/notifications/service.js'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'
import { Client, Orders, connect, connected, createOrder } from './notifications-helpers.js'
import { until } from './support/wait.js'

let t: TestApp
let orders: Orders
beforeAll(async () => {
  t = await createTestApp({ listen: true, config: { wsPingIntervalMs: 1_000 } })
  orders = await Orders.on(t)
})
afterAll(async () => {
  await t?.close()
})

/** A user with one order and its first `n` (1 to 3) notifications: placed, shipped, delivered (ids ascending). */
async function userWithNotifications(n: 1 | 2 | 3) {
  const user = await t.user()
  const { orderId, notification } = await orders.placed(user)
  const ids = [notification.id]
  for (const status of (['shipped', 'delivered'] as const).slice(0, n - 1)) ids.push((await orders.moved(user, orderId, status)).id)
  return { user, orderId, ids }
}

/**
 * Waits for a notification of the user's made after everything before it: pushes to one user travel in order, so
 * once it is there, anything misrouted or repeated before it would have arrived too.
 */
async function barrier(user: TestUser, ...clients: Client[]) {
  const { notification } = await orders.placed(user)
  await Promise.all(clients.map((c) => c.until(() => c.notifications.some((n) => n.id === notification.id), 5_000, `barrier ${notification.id}`)))
  return notification
}

describe('REST', () => {
  it('lists only your own notifications, newest first, paginated', async () => {
    const { user, orderId, ids } = await userWithNotifications(3)
    await userWithNotifications(2)
    const page1 = await t.request('GET', '/api/v1/notifications?page_size=2', { token: user.access })
    expect(page1.statusCode).toBe(200)
    const body = page1.json()
    expect(body.count).toBe(3)
    expect(body.previous).toBeNull()
    expect(body.next).toMatch(/^http:\/\/.+\/api\/v1\/notifications\?page_size=2&page=2$/)
    expect(body.results.map((n: { id: number }) => n.id)).toEqual([ids[2], ids[1]])
    expect(body.results[1]).toEqual({
      id: ids[1],
      type: 'order.status_changed',
      order_id: orderId,
      status: 'shipped',
      previous_status: 'pending',
      message: `Order #${orderId} has shipped.`,
      read: false,
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
    })
    const page2 = await t.request('GET', '/api/v1/notifications/?page_size=2&page=2', { token: user.access })
    expect(page2.json().results.map((n: { id: number }) => n.id)).toEqual([ids[0]])
    expect(page2.json().results[0].previous_status).toBeNull()
    const past = await t.request('GET', '/api/v1/notifications?page=3&page_size=2', { token: user.access })
    expect(past.statusCode).toBe(404)
    expect(past.json()).toEqual({ detail: 'Invalid page.' })
  })

  it('needs a user', async () => {
    for (const [method, url] of [
      ['GET', '/api/v1/notifications'],
      ['POST', '/api/v1/notifications/1/read'],
      ['POST', '/api/v1/notifications/read-all'],
    ] as const) {
      const res = await t.request(method, url)
      expect(res.statusCode).toBe(401)
      expect(res.json()).toEqual({ detail: 'Authentication credentials were not provided.' })
    }
  })

  it('filters on unread', async () => {
    const { user, ids } = await userWithNotifications(3)
    expect((await t.request('POST', `/api/v1/notifications/${ids[0]}/read`, { token: user.access })).statusCode).toBe(200)
    const unread = await t.request('GET', '/api/v1/notifications?unread=true', { token: user.access })
    expect(unread.json().count).toBe(2)
    expect(unread.json().results.map((n: { id: number }) => n.id)).toEqual([ids[2], ids[1]])
    const read = await t.request('GET', '/api/v1/notifications?unread=false', { token: user.access })
    expect(read.json().results.map((n: { id: number; read: boolean }) => [n.id, n.read])).toEqual([[ids[0], true]])
    const bad = await t.request('GET', '/api/v1/notifications?unread=maybe', { token: user.access })
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({ unread: ['Must be a valid boolean.'] })
  })

  it('marks one read, idempotently; someone else’s or a missing one is 404', async () => {
    const { user, ids } = await userWithNotifications(1)
    const other = await t.user()
    const id = ids[0]!
    const theirs = await t.request('POST', `/api/v1/notifications/${id}/read`, { token: other.access })
    expect(theirs.statusCode).toBe(404)
    expect(theirs.json()).toEqual({ detail: 'Not found.' })
    for (let i = 0; i < 2; i++) {
      const res = await t.request('POST', `/api/v1/notifications/${id}/read/`, { token: user.access })
      expect(res.statusCode).toBe(200)
      expect(res.json()).toMatchObject({ id, read: true, type: 'order.status_changed' })
    }
    for (const bad of ['999999999', '99999999999999999999', 'abc', '0', '-1']) {
      const res = await t.request('POST', `/api/v1/notifications/${bad}/read`, { token: user.access })
      expect(res.statusCode).toBe(404)
      expect(res.json()).toEqual({ detail: 'Not found.' })
    }
  })

  it('marks all of yours read and nobody else’s', async () => {
    const { user } = await userWithNotifications(3)
    const { user: other } = await userWithNotifications(2)
    const res = await t.request('POST', '/api/v1/notifications/read-all', { token: user.access })
    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expect((await t.request('GET', '/api/v1/notifications?unread=true', { token: user.access })).json().count).toBe(0)
    expect((await t.request('GET', '/api/v1/notifications?unread=false', { token: user.access })).json().count).toBe(3)
    expect((await t.request('GET', '/api/v1/notifications?unread=true', { token: other.access })).json().count).toBe(2)
  })
})

describe('WebSocket authentication', () => {
  it('closes with 4401 without a token, with a bad one and with a refresh token', async () => {
    const user = await t.user()
    for (const query of [{} as Record<string, string>, { token: 'not-a-jwt' }, { token: `${user.access}x` }, { token: user.refresh }]) {
      const client = connect(t, query)
      await client.opened
      expect((await client.closed).code).toBe(4401)
    }
    const header = connect(t, {}, { headers: { authorization: 'Bearer nonsense' } })
    expect((await header.closed).code).toBe(4401)
  })

  it('accepts the access token in the query or the Authorization header', async () => {
    const user = await t.user()
    const a = await connected(t, { token: user.access })
    const b = await connected(t, {}, { headers: { authorization: `Bearer ${user.access}` } })
    await Promise.all([a.close(), b.close()])
  })

  it('closes with 4401 when the access token expires', async () => {
    const user = await t.user()
    // exp is whole seconds: issued at the start of a second, a 2 s token lives 1.8 s or more.
    await until('the start of a second', () => Date.now() % 1000 <= 200, 2_000, 5)
    const shortLived = new TokenService(t.ctx.config.jwtSecret, { access: 2, refresh: 2 })
    const token = shortLived.issue('access', user.id, 0).token
    const exp = shortLived.verify(token)!.exp * 1000
    const client = await connected(t, { token })
    const closed = await client.closed
    expect(closed).toEqual({ code: 4401, reason: 'Token expired' })
    expect(Date.now()).toBeGreaterThanOrEqual(exp - 50)
    expect(Date.now()).toBeLessThan(exp + 1_000)
  })

  it('closes with 4400 on a malformed since, and answers a plain GET with 426', async () => {
    const user = await t.user()
    for (const since of ['abc', '-1', '1.5', '99999999999999999999']) {
      const client = connect(t, { token: user.access, since })
      expect((await client.closed).code).toBe(4400)
    }
    const res = await t.request('GET', '/ws/notifications')
    expect(res.statusCode).toBe(426)
  })
})

describe('WebSocket delivery', () => {
  it('pushes a status change to every socket of its user within a second, and to nobody else', async () => {
    const user = await t.user()
    const other = await t.user()
    const [a, b, c] = await Promise.all([
      connected(t, { token: user.access }),
      connected(t, { token: user.access }),
      connected(t, { token: other.access }),
    ])
    const { orderId, notification: placed } = await orders.placed(user)
    await Promise.all([a.untilNotifications(1, 1_000), b.untilNotifications(1, 1_000)])
    await orders.move(orderId, 'shipped')
    await Promise.all([a.untilNotifications(2, 1_000), b.untilNotifications(2, 1_000)])
    const notification = await orders.notification(user, orderId, 'shipped')
    for (const client of [a, b]) {
      expect(client.messages.filter((m) => m.type !== 'pong')).toEqual([placed, notification].map((n) => ({ type: 'order.status_changed', notification: n })))
    }
    expect(notification).toMatchObject({ order_id: orderId, status: 'shipped', previous_status: 'pending', read: false })
    const theirs = await barrier(other, c)
    expect(c.notifications).toEqual([theirs])
    await Promise.all([a.close(), b.close(), c.close()])
  })

  it('answers ping with pong and bad messages with an error, without closing', async () => {
    const user = await t.user()
    const client = await connected(t, { token: user.access })
    client.messages.length = 0
    client.send('not json')
    client.send({ type: 'subscribe' })
    client.send('null')
    client.send('[1,2]')
    client.ws.send(Buffer.from([1, 2, 3]), { binary: true })
    client.send({ type: 'ping' })
    await client.until(() => client.messages.length === 6)
    expect(client.messages.slice(0, 5).every((m) => m.type === 'error' && typeof m.detail === 'string')).toBe(true)
    expect(client.messages[5]).toEqual({ type: 'pong' })
    expect(client.ws.readyState).toBe(client.ws.OPEN)
    await client.close()
  })

  it('pings idle sockets at the ws level and drops one that does not answer', async () => {
    const user = await t.user()
    const live = await connected(t, { token: user.access })
    let pings = 0
    live.ws.on('ping', () => pings++)
    const dead = await connected(t, { token: user.access }, { autoPong: false })
    expect((await dead.closed).code).toBe(1006)
    expect(pings).toBeGreaterThanOrEqual(1)
    expect(live.ws.readyState).toBe(live.ws.OPEN)
    await live.close()
  })

  it('ignores malformed channel messages', async () => {
    const user = await t.user()
    const client = await connected(t, { token: user.access })
    for (const junk of ['nope', '{}', JSON.stringify({ user_id: user.id, notification: { id: 'x' } })]) {
      await t.ctx.pubsub.publish(NOTIFICATIONS_CHANNEL, junk)
    }
    const { orderId, notification: placed } = await orders.placed(user)
    const notification = await orders.moved(user, orderId, 'cancelled')
    await client.untilNotifications(2)
    expect(client.notifications).toEqual([placed, notification])
    await client.close()
  })

  it('counts open sockets in the websocket_connections gauge', async () => {
    const gauge = async () => {
      const text = (await t.request('GET', '/metrics')).body
      return Number(/^websocket_connections (\d+)$/m.exec(text)?.[1])
    }
    const before = await gauge()
    const user = await t.user()
    const clients = await Promise.all([connected(t, { token: user.access }), connected(t, { token: user.access })])
    expect(await gauge()).toBe(before + 2)
    await Promise.all(clients.map((c) => c.close()))
    await until('the gauge to count the closed sockets out', async () => (await gauge()) === before)
  })
})

describe('sockets per user', () => {
  let capped: TestApp
  beforeAll(async () => {
    capped = await createTestApp({ listen: true, config: { wsMaxSocketsPerUser: 2 } })
  })
  afterAll(async () => {
    await capped?.close()
  })

  it('closes the user’s oldest socket with 4429 when a new one exceeds WS_MAX_SOCKETS_PER_USER', async () => {
    const user = await capped.user()
    const other = await capped.user()
    const [first, second] = [await connected(capped, { token: user.access }), await connected(capped, { token: user.access })]
    const theirs = await connected(capped, { token: other.access })
    const third = await connected(capped, { token: user.access })
    expect(await first.closed).toEqual({ code: 4429, reason: 'Too many sockets for this user' })
    const fourth = await connected(capped, { token: user.access })
    expect(await second.closed).toEqual({ code: 4429, reason: 'Too many sockets for this user' })

    // The two newest stay, receive pushes, and someone else's socket never counted.
    const cappedOrders = await Orders.on(capped)
    const { notification } = await cappedOrders.placed(user)
    await Promise.all([third.untilNotifications(1), fourth.untilNotifications(1)])
    expect([third.notifications, fourth.notifications]).toEqual([[notification], [notification]])
    expect(theirs.ws.readyState).toBe(theirs.ws.OPEN)
    await Promise.all([third.close(), fourth.close(), theirs.close()])
  })
})

describe('WebSocket replay with since', () => {
  const ids = (client: Client) => client.notifications.map((n) => n.id)

  it('replays what was missed while disconnected, oldest first, then goes live, with no repeat', async () => {
    const user = await t.user()
    const first = await connected(t, { token: user.access })
    const { orderId, notification: n1 } = await orders.placed(user)
    await first.untilNotifications(1)
    await first.close()

    const n2 = await orders.moved(user, orderId, 'shipped')
    const n3 = await orders.moved(user, orderId, 'delivered')
    const again = connect(t, { token: user.access, since: first.notifications.at(-1)!.id })
    // Races the reconnect: it lands in the backlog or arrives live, and must come exactly once, after n3.
    const second = await orders.place(user)
    await again.untilNotifications(3)
    const n4 = await orders.notification(user, second, 'pending')
    const n5 = await orders.moved(user, second, 'cancelled')
    await again.untilNotifications(4)
    const n6 = await barrier(user, again)
    expect(ids(again)).toEqual([n2.id, n3.id, n4.id, n5.id, n6.id])
    expect(again.notifications[0]).toEqual(n2)
    expect(n1.id).toBeLessThan(n2.id)
    await again.close()
  })

  it('misses nothing and repeats nothing when changes race the reconnect', async () => {
    const user = await t.user()
    const placed: number[] = []
    for (let i = 0; i < 5 * 13; i++) placed.push(await orders.place(user))
    const since = (await orders.notification(user, placed.at(-1)!, 'pending')).id
    for (let round = 0; round < 5; round++) {
      const mine = placed.slice(round * 13, round * 13 + 13)
      await Promise.all(mine.slice(0, 3).map((id) => orders.move(id, 'shipped')))
      const client = connect(t, { token: user.access, since })
      await Promise.all(mine.slice(3).map((id) => orders.move(id, 'shipped')))
      const expected = await Promise.all(mine.map(async (id) => (await orders.notification(user, id, 'shipped')).id))
      const all = await t.request('GET', '/api/v1/notifications?page_size=100', { token: user.access })
      const stored = (all.json().results as { id: number }[]).map((n) => n.id).filter((id) => id > since)
      await client.untilNotifications(stored.length, 5_000)
      const last = await barrier(user, client)
      const got = ids(client)
      expect(new Set(got).size).toBe(got.length)
      expect([...got].sort((a, b) => a - b)).toEqual([...stored, last.id].sort((a, b) => a - b))
      expect(stored).toEqual(expect.arrayContaining(expected))
      await client.close()
    }
  })

  it('replays a large backlog in batches, in order', async () => {
    const user = await t.user()
    const orderId = await createOrder(t, user.id)
    const { notifications } = await import('../src/db/schema.js')
    const rows = Array.from({ length: 1_203 }, () => ({ userId: user.id, orderId, status: 'shipped' as const, message: 'x' }))
    const inserted = await t.ctx.db.insert(notifications).values(rows).returning({ id: notifications.id })
    const client = connect(t, { token: user.access, since: 0 })
    await client.untilNotifications(1_203, 10_000)
    expect(ids(client)).toEqual(inserted.map((r) => r.id).sort((a, b) => a - b))
    await client.close()
  })
})

describe('two instances', () => {
  let b: TestApp
  let bClosed = false
  let user: TestUser
  beforeAll(async () => {
    b = await createTestApp({ listen: true, shared: t })
    user = await t.user()
  })
  afterAll(async () => {
    if (!bClosed) await b?.close()
  })

  it('delivers a change made through one instance to sockets on the other', async () => {
    const [onA, onB] = await Promise.all([connected(t, { token: user.access }), connected(b, { token: user.access })])
    const { orderId, notification: placed } = await orders.placed(user, b)
    await Promise.all([onA.untilNotifications(1, 1_000), onB.untilNotifications(1, 1_000)])
    const viaA = await orders.moved(user, orderId, 'shipped', t)
    await Promise.all([onA.untilNotifications(2, 1_000), onB.untilNotifications(2, 1_000)])
    const viaB = await orders.moved(user, orderId, 'delivered', b)
    await Promise.all([onA.untilNotifications(3, 1_000), onB.untilNotifications(3, 1_000)])
    expect(onA.notifications).toEqual([placed, viaA, viaB])
    expect(onB.notifications).toEqual([placed, viaA, viaB])
    await Promise.all([onA.close(), onB.close()])
  })

  it('closes its sockets with 1001 when it shuts down, and the other instance keeps serving', async () => {
    const onB = await connected(b, { token: user.access })
    const onA = await connected(t, { token: user.access })
    bClosed = true
    await b.close()
    expect((await onB.closed).code).toBe(1001)
    const { notification: n } = await orders.placed(user)
    await onA.untilNotifications(1)
    expect(onA.notifications).toEqual([n])
    await onA.close()
  })
})
