import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { type BacklogLoader, NotificationSocket, SocketHub } from '../src/notifications/sockets.js'
import { NOTIFICATIONS_CHANNEL, type NotificationOut, parsePublished } from '../src/notifications/service.js'
import { until } from './support/wait.js'

/** Just enough of a ws socket to see what the server sends. */
class FakeWs extends EventEmitter {
  readyState: number = WebSocket.OPEN
  bufferedAmount = 0
  readonly sent: Array<Record<string, any>> = []
  closedWith: number | null = null
  send(data: string) {
    this.sent.push(JSON.parse(data))
  }
  close(code: number) {
    this.closedWith = code
    this.readyState = WebSocket.CLOSING
  }
  terminate() {
    this.readyState = WebSocket.CLOSED
  }
  ping() {}
}

const log = { warn() {}, error() {}, info() {}, debug() {} } as unknown as FastifyBaseLogger

const note = (id: number): NotificationOut => ({
  id,
  type: 'order.status_changed',
  order_id: 1,
  status: 'shipped',
  previous_status: 'pending',
  message: 'Order #1 has shipped.',
  read: false,
  created_at: new Date(0).toISOString(),
})

/** A socket whose database holds `stored` (unless a loader is given), and whose session holds while `authorized`. */
function socket(options: { lastId?: number; backlog?: BacklogLoader; authorized?: () => boolean; userId?: number } = {}) {
  const ws = new FakeWs()
  const calls: number[] = []
  const stored: NotificationOut[] = []
  const backlog: BacklogLoader = options.backlog ?? (async (after, limit) => stored.filter((n) => n.id > after).slice(0, limit))
  const s = new NotificationSocket(ws as unknown as WebSocket, options.userId ?? 7, log, options.lastId ?? 0, {
    backlog: (after, limit) => (calls.push(after), backlog(after, limit)),
    authorized: async () => options.authorized?.() ?? true,
  })
  return { ws, s, calls, stored, ids: () => ws.sent.filter((m) => m.type === 'order.status_changed').map((m) => m.notification.id) }
}


describe('one socket', () => {
  it('sends its user’s notifications in id order: one that overtook its predecessor waits for it', () => {
    const { s, ids } = socket({ lastId: 10 })
    s.deliver(note(12), 11)
    s.deliver(note(13), 12)
    expect(ids()).toEqual([])
    s.deliver(note(11), 10)
    expect(ids()).toEqual([11, 12, 13])
    // Copies (re-published after a Redis cut) and what predates the socket are not sent again.
    s.deliver(note(12), 11)
    s.deliver(note(9), 8)
    expect(ids()).toEqual([11, 12, 13])
    s.dispose()
  })

  it('reads a gap from the database when the predecessor does not come (its message was lost)', async () => {
    const { s, ids, stored, calls } = socket({ lastId: 10 })
    stored.push(note(11), note(12))
    s.deliver(note(12), 11)
    await until('the gap read', () => ids().length === 2)
    expect(ids()).toEqual([11, 12])
    expect(calls).toEqual([10])
    s.dispose()
  })

  it('catches up from the database with no gap and no duplicate at the seam with live ones', async () => {
    let release!: (batch: NotificationOut[]) => void
    const { s, ids } = socket({ lastId: 10, backlog: () => new Promise((resolve) => (release = resolve)) })
    const replay = s.catchUp()
    await until('the backlog read', () => release !== undefined)
    // Published while the backlog query runs: 12 was committed before it (so it is in the backlog), 14 after.
    s.deliver(note(14), 13)
    s.deliver(note(12), 11)
    expect(ids()).toEqual([])
    release([note(11), note(12), note(13)])
    await replay
    expect(ids()).toEqual([11, 12, 13, 14])
    // 13's publish arrives late: still not a duplicate.
    s.deliver(note(13), 12)
    s.deliver(note(15), 14)
    expect(ids()).toEqual([11, 12, 13, 14, 15])
    s.dispose()
  })

  it('resyncs from the last id it sent, and skips the copies re-published afterwards', async () => {
    const { s, ids, stored, calls } = socket({ lastId: 10 })
    s.deliver(note(11), 10)
    s.deliver(note(12), 11)
    // Pub/sub was down: 13 to 15 never came.
    stored.push(note(11), note(12), note(13), note(14), note(15))
    await s.resync()
    expect(calls).toEqual([12])
    expect(ids()).toEqual([11, 12, 13, 14, 15])
    for (const id of [13, 14, 15]) s.deliver(note(id), id - 1)
    expect(ids()).toEqual([11, 12, 13, 14, 15])
    s.dispose()
  })

  it('pages through a backlog larger than one batch', async () => {
    const { s, ids, stored, calls } = socket()
    stored.push(...Array.from({ length: 1_234 }, (_, i) => note(i + 1)))
    await s.catchUp()
    expect(ids()).toEqual(stored.map((n) => n.id))
    expect(calls).toEqual([0, 500, 1_000])
    s.dispose()
  })

  it('runs catch-ups one after another, and answers a client after the catch-up asked for before', async () => {
    let release: ((batch: NotificationOut[]) => void) | undefined
    const { ws, s, calls } = socket({ backlog: () => new Promise((resolve) => (release = resolve)) })
    void s.catchUp()
    s.whenCaughtUp(() => s.send({ type: 'pong' }))
    const second = s.resync()
    await until('the backlog read', () => release !== undefined)
    expect(calls).toEqual([0])
    const first = release!
    release = undefined
    first([note(1)])
    await until('the backlog read', () => release !== undefined)
    expect(ws.sent.map((m) => m.type)).toEqual(['order.status_changed', 'pong'])
    expect(calls).toEqual([0, 1])
    release!([])
    await second
    s.dispose()
  })

  it('closes the socket when the backlog cannot be read (the client replays with since)', async () => {
    const { ws, s, ids } = socket({
      backlog: async () => {
        throw new Error('database down')
      },
    })
    await s.catchUp()
    expect(ids()).toEqual([])
    expect(ws.closedWith).toBe(1011)
  })

  it('closes with 4401 at a resync when the session was revoked meanwhile, without reading the backlog', async () => {
    const { ws, s, calls } = socket({ authorized: () => false })
    await s.resync()
    expect(ws.closedWith).toBe(4401)
    expect(calls).toEqual([])
  })

  it('closes a socket that does not keep up instead of buffering without bound', () => {
    const { ws, s } = socket()
    ws.bufferedAmount = 2 * 1024 * 1024
    s.deliver(note(1), 0)
    expect(ws.sent).toEqual([])
    expect(ws.closedWith).toBe(1013)
  })
})

describe('the hub', () => {
  it('delivers a channel message to the sockets of its user only, and survives junk', () => {
    const hub = new SocketHub(60_000, log, 20)
    const mine = socket()
    const mine2 = socket()
    const theirs = socket({ userId: 8 })
    const other = theirs.ws
    for (const x of [mine.s, mine2.s, theirs.s]) hub.add(x)
    expect(hub.size).toBe(3)
    for (const junk of ['', 'null', '[]', '{"user_id":7}', '{"user_id":7,"notification":{"id":1}}']) hub.dispatch(junk)
    hub.dispatch(JSON.stringify({ user_id: 7, previous_id: 0, notification: note(5) }))
    expect(mine.ids()).toEqual([5])
    expect(mine2.ids()).toEqual([5])
    expect(other.sent).toEqual([])
    hub.remove(mine.s)
    hub.remove(mine.s)
    expect(hub.size).toBe(2)
    hub.closeAll(1001, 'bye')
    expect(mine2.ws.closedWith).toBe(1001)
    expect(other.closedWith).toBe(1001)
  })

  it('parses only well-formed published notifications', () => {
    for (const previous of [0, 4]) {
      const message = { user_id: 7, previous_id: previous, notification: note(5) }
      expect(parsePublished(JSON.stringify(message))).toEqual(message)
    }
    expect(parsePublished(JSON.stringify({ user_id: 7, previous_id: 0, notification: { ...note(5), status: 'lost' } }))).toBeNull()
    expect(parsePublished(JSON.stringify({ user_id: -1, previous_id: 0, notification: note(5) }))).toBeNull()
    for (const previous of [undefined, null, 5, 6, -1, 1.5, '4']) {
      expect(parsePublished(JSON.stringify({ user_id: 7, previous_id: previous, notification: note(5) }))).toBeNull()
    }
    expect(NOTIFICATIONS_CHANNEL).toBe('notifications')
  })
})
