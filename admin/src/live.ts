/**
 * The staff stream (/ws/staff): every order placed or moved, pushed as it happens. The client keeps the id of the
 * last notification it saw and reconnects with `?since=` after any drop, so the feed never misses an event; a 4401
 * (expired or revoked access token) is answered with a token refresh first.
 */
import type { StaffFrame } from './api/types'
import { session } from './session'

export type FeedEvent = StaffFrame['notification'] & { kind: StaffFrame['type'] }
export type LiveStatus = 'connecting' | 'live' | 'reconnecting' | 'stopped'

const KEEP = 50
const MAX_BACKOFF_MS = 15_000

export class LiveFeed {
  status: LiveStatus = 'connecting'
  /** Newest first, at most KEEP. */
  events: FeedEvent[] = []
  private socket: WebSocket | null = null
  private lastId: number | null = null
  private failures = 0
  private timer: number | undefined
  private stopped = false
  private readonly listeners = new Set<(event: FeedEvent | null) => void>()

  /** `listener` hears each new event, and null when only the status changed. */
  subscribe(listener: (event: FeedEvent | null) => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private emit(event: FeedEvent | null): void {
    for (const listener of this.listeners) listener(event)
  }

  private setStatus(status: LiveStatus): void {
    this.status = status
    this.emit(null)
  }

  start(): void {
    const token = session.accessToken
    if (this.stopped || !token) return
    const url = new URL('/ws/staff', location.href)
    url.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:'
    url.searchParams.set('token', token)
    if (this.lastId !== null) url.searchParams.set('since', String(this.lastId))
    const socket = new WebSocket(url)
    this.socket = socket
    socket.onopen = () => {
      this.failures = 0
      this.setStatus('live')
    }
    socket.onmessage = (message) => this.receive(String(message.data))
    socket.onclose = (close) => {
      if (this.socket !== socket || this.stopped) return
      this.socket = null
      if (close.code === 4403) return this.setStatus('stopped')
      this.setStatus('reconnecting')
      if (close.code === 4401) {
        void session.refreshOrSignOut().then((ok) => ok && this.start())
        return
      }
      // The server going away (1001) is worth an immediate retry; anything else backs off.
      const delay = close.code === 1001 ? 0 : Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures++)
      this.timer = window.setTimeout(() => this.start(), delay)
    }
  }

  private receive(text: string): void {
    let frame: StaffFrame
    try {
      frame = JSON.parse(text) as StaffFrame
    } catch {
      return
    }
    if (frame.type !== 'order.created' && frame.type !== 'order.status_changed') return
    const event: FeedEvent = { ...frame.notification, kind: frame.type }
    this.lastId = Math.max(this.lastId ?? 0, event.id)
    this.events = [event, ...this.events].slice(0, KEEP)
    this.emit(event)
  }

  stop(): void {
    this.stopped = true
    window.clearTimeout(this.timer)
    this.socket?.close(1000)
    this.socket = null
    this.setStatus('stopped')
  }
}
