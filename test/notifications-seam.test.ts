import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { WebSocket } from 'ws'
import type { FastifyBaseLogger } from 'fastify'
import { NotificationSocket, SocketHub } from '../src/notifications/sockets.js'
import { NOTIFICATIONS_CHANNEL, type NotificationOut, parsePublished } from '../src/notifications/service.js'

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

function socket() {
  const ws = new FakeWs()
  const s = new NotificationSocket(ws as unknown as WebSocket, 7, log)
  return { ws, s, ids: () => ws.sent.filter((m) => m.type === 'order.status_changed').map((m) => m.notification.id) }
}

describe('the replay seam', () => {
  it('holds live notifications until the backlog is sent, then skips those the backlog had', async () => {
    const { s, ids } = socket()
    let release!: (batch: NotificationOut[]) => void
    const replay = s.replay(10, () => new Promise((resolve) => (release = resolve)))
    // Published while the backlog query runs: 12 was committed before it (so it is in the backlog), 14 after.
    s.deliver(note(14))
    s.deliver(note(12))
    expect(ids()).toEqual([])
    release([note(11), note(12), note(13)])
    await replay
    expect(ids()).toEqual([11, 12, 13, 14])
    // 13's publish arrives late: still not a duplicate.
    s.deliver(note(13))
    // 9 below the highest id sent, committed late and never replayed: delivered, not lost.
    s.deliver(note(9))
    s.deliver(note(15))
    expect(ids()).toEqual([11, 12, 13, 14, 9, 15])
    expect(s.lastId).toBe(15)
    s.dispose()
  })

  it('pages through a backlog larger than one batch', async () => {
    const { s, ids } = socket()
    const stored = Array.from({ length: 1_234 }, (_, i) => note(i + 1))
    const calls: number[] = []
    await s.replay(0, async (after, limit) => {
      calls.push(after)
      return stored.filter((n) => n.id > after).slice(0, limit)
    })
    expect(ids()).toEqual(stored.map((n) => n.id))
    expect(calls).toEqual([0, 500, 1_000])
    s.dispose()
  })

  it('sends nothing held when the replay fails (the socket is closed and the client replays again)', async () => {
    const { s, ids } = socket()
    const replay = s.replay(0, async () => {
      s.deliver(note(3))
      throw new Error('database down')
    })
    await expect(replay).rejects.toThrow('database down')
    expect(ids()).toEqual([])
  })

  it('closes a socket that does not keep up instead of buffering without bound', () => {
    const { ws, s } = socket()
    ws.bufferedAmount = 2 * 1024 * 1024
    s.deliver(note(1))
    expect(ws.sent).toEqual([])
    expect(ws.closedWith).toBe(1013)
  })
})

describe('the hub', () => {
  it('delivers a channel message to the sockets of its user only, and survives junk', () => {
    const hub = new SocketHub(60_000, log)
    const mine = socket()
    const mine2 = socket()
    const other = new FakeWs()
    const theirs = new NotificationSocket(other as unknown as WebSocket, 8, log)
    for (const x of [mine.s, mine2.s, theirs]) hub.add(x)
    expect(hub.size).toBe(3)
    for (const junk of ['', 'null', '[]', '{"user_id":7}', '{"user_id":7,"notification":{"id":1}}']) hub.dispatch(junk)
    hub.dispatch(JSON.stringify({ user_id: 7, notification: note(5) }))
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
    expect(parsePublished(JSON.stringify({ user_id: 7, notification: note(5) }))).toEqual({ user_id: 7, notification: note(5) })
    expect(parsePublished(JSON.stringify({ user_id: 7, notification: { ...note(5), status: 'lost' } }))).toBeNull()
    expect(parsePublished(JSON.stringify({ user_id: -1, notification: note(5) }))).toBeNull()
    expect(NOTIFICATIONS_CHANNEL).toBe('notifications')
  })
})
