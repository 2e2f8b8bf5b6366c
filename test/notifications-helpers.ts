import { WebSocket, type ClientOptions } from 'ws'
import { randomBytes } from 'node:crypto'
import { emptyAddress, orders, type OrderStatus } from '../src/db/schema.js'
import { frameText } from '../src/notifications/protocol.js'
import type { NotificationOut } from '../src/notifications/service.js'
import type { TestApp, TestUser } from './helpers.js'

/** A real `ws` client that records every message and how the socket closed. */
export class Client {
  readonly messages: Array<Record<string, any>> = []
  readonly opened: Promise<void>
  readonly closed: Promise<{ code: number; reason: string }>
  private readonly waiters = new Set<() => void>()

  constructor(
    readonly ws: WebSocket,
  ) {
    this.opened = new Promise((resolve, reject) => {
      ws.once('open', () => resolve())
      ws.once('error', reject)
    })
    this.closed = new Promise((resolve) => ws.once('close', (code, reason) => resolve({ code, reason: reason.toString() })))
    ws.on('message', (data) => {
      this.messages.push(JSON.parse(frameText(data)))
      for (const wake of this.waiters) wake()
    })
    void this.closed.then(() => {
      for (const wake of this.waiters) wake()
    })
  }

  /** Notifications received so far (order.status_changed messages only). */
  get notifications(): NotificationOut[] {
    return this.messages.filter((m) => m.type === 'order.status_changed').map((m) => m.notification)
  }

  /** Resolves once `done()` holds; rejects after `ms`. */
  until(done: () => boolean, ms = 2_000, what = 'condition'): Promise<void> {
    if (done()) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const wake = () => {
        if (!done()) return
        this.waiters.delete(wake)
        clearTimeout(timer)
        resolve()
      }
      const timer = setTimeout(() => {
        this.waiters.delete(wake)
        reject(new Error(`timed out after ${ms} ms waiting for ${what}; got ${JSON.stringify(this.messages)}`))
      }, ms)
      this.waiters.add(wake)
    })
  }

  untilNotifications(n: number, ms = 2_000): Promise<void> {
    return this.until(() => this.notifications.length >= n, ms, `${n} notifications`)
  }

  send(message: unknown): void {
    this.ws.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  close(): Promise<{ code: number; reason: string }> {
    this.ws.close(1000)
    return this.closed
  }
}

export function wsUrl(t: TestApp, query: Record<string, string | number> = {}, path = '/ws/notifications'): string {
  const url = new URL(path, t.url.replace(/^http/, 'ws'))
  for (const [key, value] of Object.entries(query)) url.searchParams.set(key, String(value))
  return url.toString()
}

/** Opens a socket (without waiting for it to open: see `opened`). */
export function connect(t: TestApp, query: Record<string, string | number> = {}, options: ClientOptions = {}, path?: string): Client {
  return new Client(new WebSocket(wsUrl(t, query, path), options))
}

export async function connected(
  t: TestApp,
  query: Record<string, string | number> = {},
  options: ClientOptions = {},
  path?: string,
): Promise<Client> {
  const client = connect(t, query, options, path)
  await client.opened
  // The server authenticates after the upgrade: a ping answered means the socket is registered for pushes.
  client.send({ type: 'ping' })
  await client.until(() => client.messages.some((m) => m.type === 'pong'), 2_000, 'pong')
  return client
}

/** A bare order row with no notification yet (placing one through the API stores its `pending` notification). */
export async function createOrder(t: TestApp, userId: number): Promise<number> {
  const [row] = await t.ctx.db.insert(orders).values({ userId, totalPrice: '10.00', shippingAddress: emptyAddress }).returning()
  return row!.id
}

/**
 * Orders placed and moved through the API, as a client and the staff would: each placement and each status change
 * stores the owner's notification and pushes it, by the orders code itself.
 */
export class Orders {
  private constructor(
    private readonly t: TestApp,
    private readonly staff: TestUser,
    private readonly productId: number,
  ) {}

  /** A staff account and a product with stock enough for any test, made through the catalogue API. */
  static async on(t: TestApp): Promise<Orders> {
    const staff = await t.user({ staff: true })
    const category = await t.request('POST', '/api/v1/categories', { token: staff.access, body: { name: `notify-${randomBytes(4).toString('hex')}` } })
    if (category.statusCode !== 201) throw new Error(`category: ${category.body}`)
    const product = await t.request('POST', '/api/v1/products', {
      token: staff.access,
      body: { name: 'Notified', price: '10.00', stock: 1_000_000, category_id: category.json().id },
    })
    if (product.statusCode !== 201) throw new Error(`product: ${product.body}`)
    return new Orders(t, staff, product.json().id)
  }

  /** Places an order for `user` (its notification says `pending`); returns the order's id. */
  async place(user: TestUser, through = this.t): Promise<number> {
    const added = await through.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: this.productId, quantity: 1 } })
    if (added.statusCode !== 201) throw new Error(`add to cart: ${added.statusCode} ${added.body}`)
    const placed = await through.request('POST', '/api/v1/orders', { token: user.access, body: {} })
    if (placed.statusCode !== 201) throw new Error(`place: ${placed.statusCode} ${placed.body}`)
    return placed.json().id
  }

  /** Moves the order as staff (PATCH /orders/{id}/status). */
  async move(orderId: number, status: OrderStatus, through = this.t): Promise<void> {
    const res = await through.request('PATCH', `/api/v1/orders/${orderId}/status`, { token: this.staff.access, body: { status } })
    if (res.statusCode !== 200) throw new Error(`${status}: ${res.statusCode} ${res.body}`)
  }

  /** The notification the API lists for the order's move to `status` (one per order and status). */
  async notification(user: TestUser, orderId: number, status: OrderStatus): Promise<NotificationOut> {
    const res = await this.t.request('GET', '/api/v1/notifications?page_size=100', { token: user.access })
    const found = (res.json().results as NotificationOut[]).find((n) => n.order_id === orderId && n.status === status)
    if (!found) throw new Error(`no ${status} notification for order ${orderId}: ${res.body}`)
    return found
  }

  /** Places an order and returns its `pending` notification. */
  async placed(user: TestUser, through = this.t): Promise<{ orderId: number; notification: NotificationOut }> {
    const orderId = await this.place(user, through)
    return { orderId, notification: await this.notification(user, orderId, 'pending') }
  }

  /** Moves the order and returns the notification of the move. */
  async moved(user: TestUser, orderId: number, status: OrderStatus, through = this.t): Promise<NotificationOut> {
    await this.move(orderId, status, through)
    return this.notification(user, orderId, status)
  }
}
