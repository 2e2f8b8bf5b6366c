import type { FastifyBaseLogger } from 'fastify'
import pMap from 'p-map'
import { WebSocket } from 'ws'
import { CloseCode } from './protocol.js'
import { type NotificationOut, parsePublished } from './service.js'

/** Above this much unsent data the client is not keeping up: it is dropped and replays with `since`. */
const MAX_BUFFERED_BYTES = 1024 * 1024
const REPLAY_BATCH = 500
/**
 * How long a notification waits for the one before it (published by another request or instance, normally
 * milliseconds behind) before the socket reads the gap from the database: its message was lost (Redis cut, or the
 * instance that published it died).
 */
const GAP_WAIT_MS = 500
/** setTimeout's ceiling; a later expiry just closes early and the client reconnects with a fresh token. */
const MAX_TIMEOUT_MS = 2 ** 31 - 1

export type BacklogLoader = (afterId: number, limit: number) => Promise<NotificationOut[]>

/** What a socket reads again when it catches up. */
export interface SocketSource {
  /** The stored notifications the socket may see with an id above `afterId`, oldest first. */
  backlog: BacklogLoader
  /** Whether the access token behind the socket still holds: a revocation may have been missed meanwhile. */
  authorized(): Promise<boolean>
}

/** How a notification goes on the wire; /ws/notifications' frame unless a stream says otherwise. */
export type Frame = (notification: NotificationOut) => { type: string }
export const ownerFrame: Frame = (notification) => ({ type: 'order.status_changed', notification })

/**
 * One authenticated socket of a stream: live pushes, catching up from the database (the `since` replay, a gap,
 * pub/sub having been down), token expiry. Subclasses decide in which order live notifications go out.
 */
export abstract class StreamSocket {
  /** Cleared at each server ping, set by the pong (or any message); still clear at the next ping means dead. */
  alive = true
  /** Catch-ups and answers run one after another: a pong is sent after the replay asked for before it. */
  private queue: Promise<void> = Promise.resolve()
  private readonly timers: NodeJS.Timeout[] = []

  /**
   * @param lastId every notification the socket may see up to this id was sent or predates the socket: `since`, or
   *   the highest id read before the socket joined the hub.
   */
  constructor(
    readonly ws: WebSocket,
    readonly userId: number,
    protected readonly log: FastifyBaseLogger,
    protected lastId: number,
    protected readonly source: SocketSource,
    private readonly frame: Frame,
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

  /** A live notification from pub/sub, with the id of its owner's notification before it. */
  abstract deliver(notification: NotificationOut, previousId: number): void

  protected sendNotification(notification: NotificationOut): void {
    this.send(this.frame(notification))
  }

  /** Sends `answer()` once the catch-ups asked for before it are done. */
  whenCaughtUp(answer: () => void): void {
    void this.enqueue(async () => answer())
  }

  /**
   * Sends what is stored above `lastId`, oldest first. The socket must already receive live notifications (be in the
   * hub): anything committed after the backlog was read is then published to it, and anything committed before is
   * in the backlog, so there is no gap at the seam. On failure the socket is closed and the client replays with
   * `since`. Runs after any catch-up already under way.
   */
  catchUp(): Promise<void> {
    return this.enqueue(() => this.readBacklog())
  }

  /** After pub/sub was down: the session may have been revoked on another instance meanwhile, else catch up. */
  resync(): Promise<void> {
    return this.enqueue(async () => {
      if (!(await this.source.authorized())) return this.ws.close(CloseCode.unauthorized, 'Session revoked')
      await this.readBacklog()
    })
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(async () => {
      if (!this.open) return
      try {
        await step()
      } catch (err) {
        this.log.error({ err, userId: this.userId }, 'notification socket: catch-up failed')
        this.ws.close(CloseCode.internalError, 'Replay failed: reconnect with since')
      }
    })
    return this.queue
  }

  protected async readBacklog(): Promise<void> {
    for (;;) {
      const batch = await this.source.backlog(this.lastId, REPLAY_BATCH)
      if (!this.open) return
      for (const notification of batch) this.caughtUp(notification)
      if (batch.length < REPLAY_BATCH) break
    }
  }

  /** One notification read back from the database by a catch-up. */
  protected abstract caughtUp(notification: NotificationOut): void

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
  }
}

/**
 * A socket of /ws/notifications. It sends its user's notifications in id order, each once and with no gap: one
 * user's notifications commit in id order (lockUserNotifications) and each live one names the one before it, so a
 * live one is sent only once its predecessor has been, and waits for it otherwise. A client's `since` (the last id
 * it got) is therefore exact, and so is this socket's own `lastId` when it catches up.
 */
export class NotificationSocket extends StreamSocket {
  /** Live notifications that arrived before their predecessor, by the predecessor's id. */
  private readonly waiting = new Map<number, NotificationOut>()
  private gapTimer: NodeJS.Timeout | undefined

  constructor(ws: WebSocket, userId: number, log: FastifyBaseLogger, lastId: number, source: SocketSource) {
    super(ws, userId, log, lastId, source, ownerFrame)
  }

  /** Anything at or below `lastId` was sent already: a copy re-published after a Redis cut, or one a catch-up read first. */
  deliver(notification: NotificationOut, previousId: number): void {
    if (notification.id <= this.lastId) return
    if (previousId <= this.lastId) return this.push(notification)
    this.waiting.set(previousId, notification)
    this.gapTimer ??= setTimeout(() => {
      this.gapTimer = undefined
      if (this.waiting.size) void this.catchUp()
    }, GAP_WAIT_MS).unref()
  }

  /** Sends one notification, then those that were waiting for it. */
  private push(notification: NotificationOut): void {
    let next: NotificationOut | undefined = notification
    while (next) {
      this.sendNotification(next)
      this.lastId = next.id
      next = this.waiting.get(next.id)
      this.waiting.delete(this.lastId)
    }
  }

  // Live ones may have moved lastId on while the batch was read; those read first are below lastId when they come.
  protected caughtUp(notification: NotificationOut): void {
    if (notification.id > this.lastId) this.push(notification)
  }

  protected override async readBacklog(): Promise<void> {
    await super.readBacklog()
    // What waited since before the read was committed before it was published, so the backlog had it (and it was
    // sent above); one that came during the read may be newer, and still waits for its predecessor if that is too.
    for (const [previousId, notification] of this.waiting) {
      if (notification.id <= this.lastId) this.waiting.delete(previousId)
      else if (previousId <= this.lastId) {
        this.waiting.delete(previousId)
        this.push(notification)
      }
    }
  }

  override dispose(): void {
    super.dispose()
    clearTimeout(this.gapTimer)
    this.waiting.clear()
  }
}

/** Ids a staff socket remembers having sent, so a copy (re-published, or read back by a catch-up) goes out once. */
const STAFF_SENT_MEMORY = 10_000

/**
 * A socket of the staff stream, which carries every user's notifications. Only each user's own notifications commit
 * in id order, not everyone's, so there is no single chain to wait on: a staff socket sends live notifications as
 * they come, once each, and catches up (`since`, or after a pub/sub outage) from the highest id it has sent.
 */
export class StaffSocket extends StreamSocket {
  private readonly sent = new Set<number>()

  deliver(notification: NotificationOut): void {
    if (notification.id <= this.floor || this.sent.has(notification.id)) return
    this.sent.add(notification.id)
    if (this.sent.size > STAFF_SENT_MEMORY) this.sent.delete(this.sent.values().next().value!)
    this.sendNotification(notification)
    if (notification.id > this.lastId) this.lastId = notification.id
  }

  /** What predates the socket (or its `since`) is never sent live. */
  private readonly floor = this.lastId

  protected caughtUp(notification: NotificationOut): void {
    this.deliver(notification)
  }
}

/**
 * This instance's sockets by user; every instance receives every published notification and delivers to its own:
 * to the sockets of the notification's owner, or with `audience: 'everyone'` (the staff stream) to every socket.
 */
export class SocketHub {
  private readonly byUser = new Map<number, Set<StreamSocket>>()
  private count = 0
  private readonly heartbeat: NodeJS.Timeout

  constructor(
    pingIntervalMs: number,
    private readonly log: FastifyBaseLogger,
    /** Sockets one user may hold on this instance; a new one past it closes their oldest with 4429. */
    private readonly maxPerUser: number,
    /** Who receives a notification: its owner's sockets, or every socket of the hub (the staff stream). */
    private readonly audience: 'owner' | 'everyone' = 'owner',
  ) {
    this.heartbeat = setInterval(() => this.ping(), pingIntervalMs)
    this.heartbeat.unref()
  }

  get size(): number {
    return this.count
  }

  add(socket: StreamSocket): void {
    let sockets = this.byUser.get(socket.userId)
    if (!sockets) {
      sockets = new Set()
      this.byUser.set(socket.userId, sockets)
    }
    if (!sockets.has(socket)) {
      sockets.add(socket)
      this.count++
      // Oldest first; out of the hub at once, so a burst of new sockets cannot count one while it closes.
      for (const oldest of sockets) {
        if (sockets.size <= this.maxPerUser) break
        this.remove(oldest)
        oldest.ws.close(CloseCode.tooManySockets, 'Too many sockets for this user')
      }
    }
    socket.ws.on('pong', () => {
      socket.alive = true
    })
  }

  remove(socket: StreamSocket): void {
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
        socket.deliver(message.notification, message.previous_id)
      } catch (err) {
        // One broken socket must not cost the others their notification.
        this.log.warn({ err, userId: socket.userId }, 'notification not delivered to a socket')
        socket.ws.terminate()
      }
    }
  }

  /**
   * After pub/sub was down: every socket rechecks its session and catches up from the database, `concurrency` at a
   * time, so thousands of sockets do not take the whole pool.
   */
  async resync(concurrency: number): Promise<void> {
    await pMap([...this.sockets()], (socket) => socket.resync(), { concurrency })
  }

  *sockets(): Iterable<StreamSocket> {
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
