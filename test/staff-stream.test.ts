import { describe, expect, it } from 'vitest'
import type { TestApp, TestUser } from './helpers.js'
import { twoInstances } from './helpers.js'
import { type Client, Orders, connect, connected } from './notifications-helpers.js'
import { addToCart, makeProduct } from './orders-fixtures.js'

const STAFF = '/ws/staff'
// Two instances on one database and pub/sub: a socket on one hears what happens on the other.
const pair = twoInstances({ listen: true })

const staffSocket = (t: TestApp, user: TestUser, query: Record<string, string | number> = {}) =>
  connected(t, { token: user.access, ...query }, {}, STAFF)

async function placeOrder(t: TestApp, customer: TestUser): Promise<number> {
  const product = await makeProduct(t)
  await addToCart(t, customer, product.id)
  const res = await t.request('POST', '/api/v1/orders', { token: customer.access, body: {} })
  expect(res.statusCode).toBe(201)
  return res.json().id
}

/** The frames of the staff stream, pongs aside. */
const frames = (client: Client) => client.messages.filter((m) => m.type !== 'pong')

describe('/ws/staff', () => {
  it('refuses a missing or bad token with 4401 and a customer with 4403; a plain GET is 426', async () => {
    const { a } = pair
    const customer = await a.user()
    expect((await connect(a, {}, {}, STAFF).closed).code).toBe(4401)
    expect((await connect(a, { token: 'nope' }, {}, STAFF).closed).code).toBe(4401)
    expect((await connect(a, { token: customer.refresh }, {}, STAFF).closed).code).toBe(4401)
    const refused = await connect(a, { token: customer.access }, {}, STAFF).closed
    expect(refused).toEqual({ code: 4403, reason: 'You do not have permission to perform this action.' })
    const plain = await a.request('GET', STAFF)
    expect(plain.statusCode).toBe(426)
  })

  it('pushes every order’s placement and moves, whoever placed it, on another instance; customers hear only theirs', async () => {
    const { a, b } = pair
    const staff = await a.user({ staff: true })
    const [ada, bob] = [await a.user(), await a.user()]
    const watching = await staffSocket(b, staff)
    const adaSocket = await connected(b, { token: ada.access })

    const adaOrder = await placeOrder(a, ada)
    const bobOrder = await placeOrder(a, bob)
    const shipped = await a.request('PATCH', `/api/v1/orders/${adaOrder}/status`, { token: staff.access, body: { status: 'shipped' } })
    expect(shipped.statusCode).toBe(200)
    await watching.until(() => frames(watching).length >= 3, 2_000, 'three staff frames')

    const pushed = frames(watching)
    expect(pushed.map((m) => [m.type, m.notification.order_id, m.notification.previous_status, m.notification.status])).toEqual([
      ['order.created', adaOrder, null, 'pending'],
      ['order.created', bobOrder, null, 'pending'],
      ['order.status_changed', adaOrder, 'pending', 'shipped'],
    ])
    // The customer's read flag is not the shop's business; the rest is the stored notification.
    expect(pushed[2]).toEqual({
      type: 'order.status_changed',
      notification: {
        id: expect.any(Number),
        order_id: adaOrder,
        status: 'shipped',
        previous_status: 'pending',
        message: `Order #${adaOrder} has shipped.`,
        created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/),
      },
    })
    // Ada's own socket is unchanged: her two notifications, in the customers' frame, and none of Bob's.
    await adaSocket.untilNotifications(2)
    expect(adaSocket.notifications.map((n) => [n.order_id, n.status])).toEqual([
      [adaOrder, 'pending'],
      [adaOrder, 'shipped'],
    ])
    expect(adaSocket.messages.filter((m) => m.type !== 'pong').every((m) => m.type === 'order.status_changed')).toBe(true)
    await Promise.all([watching.close(), adaSocket.close()])
  })

  it('replays every user’s notifications after `since`, then goes on live, with none twice', async () => {
    const { a, b } = pair
    const staff = await a.user({ staff: true })
    const orders = await Orders.on(a)
    const [ada, bob] = [await a.user(), await a.user()]
    const { orderId: adaOrder, notification: first } = await orders.placed(ada)
    const { orderId: bobOrder, notification: second } = await orders.placed(bob)
    const third = await orders.moved(ada, adaOrder, 'shipped')

    const watching = await staffSocket(b, staff, { since: first.id })
    const fourth = await orders.moved(bob, bobOrder, 'cancelled')
    await watching.until(() => frames(watching).some((m) => m.notification.id === fourth.id), 2_000, 'the live one')
    // Nothing else arrives late: wait for a pong sent after everything above.
    watching.send({ type: 'ping' })
    await watching.until(() => watching.messages.filter((m) => m.type === 'pong').length >= 2, 2_000, 'second pong')
    const ids = frames(watching).map((m) => m.notification.id)
    // Other tests of the file may add their own after `first`: this test's are in order, each once.
    const mine = ids.filter((id) => [second.id, third.id, fourth.id].includes(id))
    expect(mine).toEqual([second.id, third.id, fourth.id])
    expect(new Set(ids).size).toBe(ids.length)
    expect(ids).not.toContain(first.id)
    await watching.close()
  })

  it('closes a staff socket when its account loses staff rights (4401), and refuses it after (4403)', async () => {
    const { a, b } = pair
    const boss = await a.user({ staff: true })
    const clerk = await a.user({ staff: true })
    const watching = await staffSocket(b, clerk)
    const demoted = await a.request('PATCH', `/api/v1/users/${clerk.id}`, { token: boss.access, body: { is_staff: false } })
    expect(demoted.statusCode).toBe(200)
    expect((await watching.closed).code).toBe(4401)
    const login = await a.request('POST', '/api/v1/auth/token', { body: { email: clerk.email, password: clerk.password } })
    expect((await connect(b, { token: login.json().access }, {}, STAFF).closed).code).toBe(4403)
  })

  it('counts its sockets apart from the customers’', async () => {
    const { a } = pair
    const staff = await a.user({ staff: true })
    const gauge = async (name: string) =>
      Number(new RegExp(`^${name} (\\d+)$`, 'm').exec((await a.request('GET', '/metrics')).body)?.[1])
    const before = { staff: await gauge('websocket_staff_connections'), customers: await gauge('websocket_connections') }
    const watching = await staffSocket(a, staff)
    expect(await gauge('websocket_staff_connections')).toBe(before.staff + 1)
    expect(await gauge('websocket_connections')).toBe(before.customers)
    await watching.close()
  })

  it('is in the OpenAPI document, its frame documented as the 101 answer', async () => {
    const doc = (await pair.a.request('GET', '/openapi.json')).json()
    const frame = doc.paths[STAFF].get.responses['101'].content['application/json'].schema
    expect(frame.properties.type.anyOf.map((s: { enum: string[] }) => s.enum[0])).toEqual(['order.created', 'order.status_changed'])
    expect(Object.keys(frame.properties.notification.properties).sort()).toEqual(
      ['created_at', 'id', 'message', 'order_id', 'previous_status', 'status'],
    )
  })
})
