import type { FastifyBaseLogger } from 'fastify'
import { WebSocket } from 'ws'
import { CloseCode } from './protocol.js'
import { type NotificationOut, parsePublished } from './service.js'

/** Above this much unsent data the client is not keeping up: it is dropped and replays with `since`. */
const MAX_BUFFERED_BYTES = 1024 * 1024
const REPLAY_BATCH = 500
/**
 * How long a socket remembers the ids it replayed. A notification can be in the backlog and still have its publish
 * in flight; past this window that publish has long arrived, so the memory is freed.
 */
const REPLAY_DEDUP_WINDOW_MS = 60_000
/** setTimeout's ceiling; a later expiry just closes early and the client reconnects with a fresh token. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

export type BacklogLoader = (afterId: number, limit: number) => Promise<NotificationOut[]>

/** How a notification goes on the wire; /ws/notifications' frame unless a stream says otherwise. */
export type Frame = (notification: NotificationOut) => { type: string }
const ownerFrame: Frame = (notification) => ({ type: 'order.status_changed', notification })

/** One authenticated socket: live pushes, the `since` replay and its seam, token expiry. */
export class NotificationSocket {
  /** Cleared at each server ping, set by the pong (or any message); still clear at the next ping means dead. */
  alive = true
  /** Highest notification id sent on this socket. */
  lastId = 0
  /** Live notifications held back while the backlog is replayed, so none overtakes (or slips past) the replay. */
  private held: NotificationOut[] | null = null
  private replayed: Set<number> | null = null
  private readonly timers: NodeJS.Timeout[] = []

  constructor(
    readonly ws: WebSocket,
    readonly userId: number,
    private readonly log: FastifyBaseLogger,
    private readonly frame: Frame = ownerFrame,
  ) {}

  get open(): boolean {
    return this.ws.readyState === WebSocket.OPEN
  }

  send(message: { type: string }): void {
    if (!this.open) return
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.log.warn({ userId: this.userId }, 'notification socket too slow; closing it so it replays with since')
      this.ws.close(CloseCode.tryAgainLater, 'Too slow: reconnect with since')
      return
    }
    this.ws.send(JSON.stringify(message))
  }

  /** A live notification from pub/sub. */
  deliver(notification: NotificationOut): void {
    if (this.held) {
      this.held.push(notification)
      return
    }
    // Already sent by the replay (its publish was still in flight when the backlog was read).
    if (this.replayed?.delete(notification.id)) return
    this.push(notification)
  }

  private push(notification: NotificationOut): void {
    this.send(this.frame(notification))
    if (notification.id > this.lastId) this.lastId = notification.id
  }

  /**
   * Sends the stored notifications after `since`, oldest first, then the live ones that arrived meanwhile. The socket
   * must already receive live notifications (be in the hub): anything committed after the backlog was read is then
   * published to it, and anything committed before is in the backlog, so the seam has no gap; ids sent by the replay
   * are skipped among the live ones, so it has no duplicate either.
   */
  async replay(since: number, load: BacklogLoader): Promise<void> {
    this.held = []
    const replayed = new Set<number>()
    this.replayed = replayed
    let failed = true
    try {
      let after = since
      for (;;) {
        const batch = await load(after, REPLAY_BATCH)
        if (!this.open) return
        for (const notification of batch) {
          replayed.add(notification.id)
          this.push(notification)
        }
        const last = batch.at(-1)
        if (batch.length < REPLAY_BATCH || !last) break
        after = last.id
      }
      failed = false
    } finally {
      const held = this.held
      this.held = null
      // On failure the caller closes the socket and the client replays again: nothing held is worth sending.
      if (!failed) for (const notification of held.sort((a, b) => a.id - b.id)) this.deliver(notification)
    }
    this.after(REPLAY_DEDUP_WINDOW_MS, () => {
      if (this.replayed === replayed) this.replayed = null
    })
  }

  /** Closes with 4401 when the access token expires, so the client reconnects with a fresh one. */
  expireAt(expSeconds: number): void {
    const delay = expSeconds * 1000 - Date.now()
    const close = () => this.ws.close(CloseCode.unauthorized, 'Token expired')
    if (delay <= 0) close()
    else this.after(Math.min(delay, MAX_TIMEOUT_MS), close)
  }

  private after(ms: number, fn: () => void): void {
    const timer = setTimeout(fn, ms)
    timer.unref()
    this.timers.push(timer)
  }

  dispose(): void {
    for (const timer of this.timers) clearTimeout(timer)
    this.timers.length = 0
    this.held = null
    this.replayed = null
  }
}

/**
 * This instance's sockets by user; every instance receives every published notification and delivers to its own:
 * to the sockets of the notification's owner, or with `audience: 'everyone'` (the staff stream) to every socket.
 */
export class SocketHub {
  private readonly byUser = new Map<number, Set<NotificationSocket>>()
  private count = 0
  private readonly heartbeat: NodeJS.Timeout

  constructor(
    pingIntervalMs: number,
    private readonly log: FastifyBaseLogger,
    private readonly audience: 'owner' | 'everyone' = 'owner',
  ) {
    this.heartbeat = setInterval(() => this.ping(), pingIntervalMs)
    this.heartbeat.unref()
  }

  get size(): number {
    return this.count
  }

  add(socket: NotificationSocket): void {
    let sockets = this.byUser.get(socket.userId)
    if (!sockets) {
      sockets = new Set()
      this.byUser.set(socket.userId, sockets)
    }
    if (!sockets.has(socket)) {
      sockets.add(socket)
      this.count++
    }
    socket.ws.on('pong', () => {
      socket.alive = true
    })
  }

  remove(socket: NotificationSocket): void {
    const sockets = this.byUser.get(socket.userId)
    if (!sockets?.delete(socket)) return
    this.count--
    if (sockets.size === 0) this.byUser.delete(socket.userId)
  }

  /** A raw message from NOTIFICATIONS_CHANNEL. */
  dispatch(raw: string): void {
    const message = parsePublished(raw)
    if (!message) {
      this.log.warn('ignoring a malformed message on the notifications channel')
      return
    }
    for (const socket of this.audience === 'everyone' ? this.sockets() : (this.byUser.get(message.user_id) ?? [])) {
      try {
        socket.deliver(message.notification)
      } catch (err) {
        // One broken socket must not cost the others their notification.
        this.log.warn({ err, userId: socket.userId }, 'notification not delivered to a socket')
        socket.ws.terminate()
      }
    }
  }

  /** Every socket of the hub. */
  *sockets(): Iterable<NotificationSocket> {
    for (const sockets of this.byUser.values()) yield* sockets
  }

  /** ws-level ping; a socket that did not answer the previous one is gone (half-open TCP) and is dropped. */
  private ping(): void {
    for (const sockets of this.byUser.values()) {
      for (const socket of sockets) {
        if (!socket.alive) {
          socket.ws.terminate()
          continue
        }
        socket.alive = false
        socket.ws.ping()
      }
    }
  }

  /** Closes every socket of one user, e.g. when their sessions are revoked. */
  closeUser(userId: number, code: number, reason: string): void {
    for (const socket of this.byUser.get(userId) ?? []) socket.ws.close(code, reason)
  }

  closeAll(code: number, reason: string): void {
    clearInterval(this.heartbeat)
    for (const sockets of this.byUser.values()) for (const socket of sockets) socket.ws.close(code, reason)
  }
}
