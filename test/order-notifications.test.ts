import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type TestApp, type TestUser, twoInstances } from './helpers.js'
import { addToCart, makeProduct } from './orders-fixtures.js'
import { frameText } from '../src/notifications/protocol.js'
import { valueOf } from './support/wait.js'

// The whole path, through the public API only: an order's status changes reach its owner's socket.
const pair = twoInstances({ listen: true })

interface Pushed {
  type: string
  notification: { id: number; order_id: number; status: string; previous_status: string | null; read: boolean }
}

function listen(t: TestApp, user: TestUser): Promise<{ messages: Pushed[]; ws: WebSocket }> {
  return new Promise((resolve, reject) => {
    const messages: Pushed[] = []
    const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws/notifications`, { headers: { authorization: `Bearer ${user.access}` } })
    ws.on('message', (data) => {
      const message = JSON.parse(frameText(data))
      if (message.type === 'pong') resolve({ messages, ws })
      else messages.push(message)
    })
    ws.on('open', () => ws.send('{"type":"ping"}'))
    ws.on('error', reject)
  })
}

async function placeOrder(t: TestApp, user: TestUser): Promise<number> {
  const product = await makeProduct(t, { stock: 5 })
  await addToCart(t, user, product.id, 2)
  const res = await t.request('POST', '/api/v1/orders', { token: user.access })
  expect(res.statusCode).toBe(201)
  return res.json().id
}

describe('order status notifications, end to end', () => {
  it('stores and pushes placement, shipping, delivery and cancellation to the owner only, across instances', async () => {
    const staff = await pair.a.user({ staff: true })
    const owner = await pair.a.user()
    const stranger = await pair.a.user()
    const onB = await listen(pair.b, owner)
    const strangerSocket = await listen(pair.a, stranger)

    const orderId = await placeOrder(pair.a, owner)
    const placed = await valueOf('the push', () => onB.messages.find((m) => m.notification.order_id === orderId))
    expect(placed).toMatchObject({ type: 'order.status_changed', notification: { status: 'pending', previous_status: null, read: false } })

    for (const [status, previous] of [['shipped', 'pending'], ['delivered', 'shipped']] as const) {
      const started = Date.now()
      const res = await pair.a.request('PATCH', `/api/v1/orders/${orderId}/status`, { token: staff.access, body: { status } })
      expect(res.statusCode).toBe(200)
      const pushed = await valueOf('the push', () => onB.messages.find((m) => m.notification.status === status && m.notification.order_id === orderId))
      expect(pushed.notification.previous_status).toBe(previous)
      expect(Date.now() - started).toBeLessThan(1000)
    }

    const second = await placeOrder(pair.b, owner)
    expect((await pair.b.request('POST', `/api/v1/orders/${second}/cancel`, { token: owner.access })).statusCode).toBe(200)
    await valueOf('the push', () => onB.messages.find((m) => m.notification.order_id === second && m.notification.status === 'cancelled'))

    const stored = await pair.a.request('GET', '/api/v1/notifications', { token: owner.access })
    expect(stored.json().results.map((n: Pushed['notification']) => [n.order_id, n.status])).toEqual([
      [second, 'cancelled'],
      [second, 'pending'],
      [orderId, 'delivered'],
      [orderId, 'shipped'],
      [orderId, 'pending'],
    ])
    expect(strangerSocket.messages).toEqual([])
    onB.ws.close()
    strangerSocket.ws.close()
  })

  it('a refused status change notifies nobody', async () => {
    const staff = await pair.a.user({ staff: true })
    const owner = await pair.a.user()
    const orderId = await placeOrder(pair.a, owner)
    const socket = await listen(pair.a, owner)
    const res = await pair.a.request('PATCH', `/api/v1/orders/${orderId}/status`, { token: staff.access, body: { status: 'delivered' } })
    expect(res.statusCode).toBe(409)
    // Pushes to one user travel in order: once the next change's arrives, one for the refused change would have too.
    const next = await pair.a.request('PATCH', `/api/v1/orders/${orderId}/status`, { token: staff.access, body: { status: 'shipped' } })
    expect(next.statusCode).toBe(200)
    await valueOf('the push', () => socket.messages.find((m) => m.notification.status === 'shipped'))
    expect(socket.messages.map((m) => [m.notification.order_id, m.notification.status])).toEqual([[orderId, 'shipped']])
    socket.ws.close()
  })
})
