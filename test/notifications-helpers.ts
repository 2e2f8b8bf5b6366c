import { WebSocket, type ClientOptions } from 'ws'
import { emptyAddress, orders, type OrderStatus } from '../src/db/schema.js'
import { type NotificationOut, publishNotifications, recordStatusChange } from '../src/notifications/service.js'
import type { TestApp } from './helpers.js'

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
      this.messages.push(JSON.parse(data.toString()))
      for (const wake of this.waiters) wake()
    })
    this.closed.then(() => {
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

export async function createOrder(t: TestApp, userId: number): Promise<number> {
  const [row] = await t.ctx.db.insert(orders).values({ userId, totalPrice: '10.00', shippingAddress: emptyAddress }).returning()
  return row!.id
}

/** Exactly what the orders code does: store the notification in the status change's transaction, publish after commit. */
export async function changeStatus(
  t: TestApp,
  userId: number,
  orderId: number,
  status: OrderStatus,
  previousStatus: OrderStatus | null,
): Promise<NotificationOut> {
  const stored = await t.ctx.db.transaction((tx) => recordStatusChange(tx, { orderId, userId, status, previousStatus }))
  await publishNotifications(t.ctx, userId, [stored])
  return stored.notification
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** Polls `check` until it holds; fails naming `what` after `ms`. */
export async function until(what: string, check: () => boolean | Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`)
    await sleep(10)
  }
}
