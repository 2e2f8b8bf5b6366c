import { EventEmitter } from 'node:events'
import { eq } from 'drizzle-orm'
import type { Db } from '../db/index.js'
import { users } from '../db/schema.js'
import type { PubSub, Unsubscribe } from '../pubsub/index.js'

export interface SessionState {
  isStaff: boolean
  isActive: boolean
  tokenVersion: number
}

interface Entry extends SessionState {
  expiresAt: number
}

const CHANNEL = 'auth.revoked'

/**
 * What every authenticated request needs to know about its user (active? staff? current token version?), mirrored
 * in-process so that a request costs no database query. A revocation (logout, password change, deactivation,
 * "revoke sessions") updates the database, then tells every instance over pub/sub to drop its copy, and closes
 * the user's sockets through `onRevoked`. Entries also expire after `ttlMs`, which bounds how long an instance
 * that missed a message (Redis down) can keep accepting a revoked token.
 */
export class SessionDirectory {
  private readonly entries = new Map<number, Entry>()
  private readonly loading = new Map<number, Promise<SessionState | null>>()
  private readonly events = new EventEmitter().setMaxListeners(0)
  private unsubscribe: Unsubscribe | undefined
  /** Bumped by every revocation: a load that started before one must not store what it read. */
  private epoch = 0

  constructor(
    private readonly db: Db,
    private readonly pubsub: PubSub,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 100_000,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(CHANNEL, (message) => {
      const userId = Number(message)
      if (Number.isSafeInteger(userId)) this.forget(userId)
    })
  }

  async stop(): Promise<void> {
    await this.unsubscribe?.()
  }

  async get(userId: number): Promise<SessionState | null> {
    const entry = this.entries.get(userId)
    if (entry && entry.expiresAt > Date.now()) return entry
    let load = this.loading.get(userId)
    if (!load) {
      load = this.load(userId).finally(() => this.loading.delete(userId))
      this.loading.set(userId, load)
    }
    return load
  }

  private async load(userId: number): Promise<SessionState | null> {
    const epoch = this.epoch
    const [row] = await this.db
      .select({ isStaff: users.isStaff, isActive: users.isActive, tokenVersion: users.tokenVersion })
      .from(users)
      .where(eq(users.id, userId))
    if (!row) return null
    if (epoch !== this.epoch) return row
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(userId, { ...row, expiresAt: Date.now() + this.ttlMs })
    return row
  }

  private forget(userId: number): void {
    this.epoch++
    this.entries.delete(userId)
    this.events.emit('revoked', userId)
  }

  /** Call after the transaction that changed the user's sessions has committed. */
  async revoked(userId: number): Promise<void> {
    this.forget(userId)
    await this.pubsub.publish(CHANNEL, String(userId)).catch(() => {})
  }

  /** Runs `listener` on every instance when a user's sessions are revoked (e.g. to close their sockets). */
  onRevoked(listener: (userId: number) => void): () => void {
    this.events.on('revoked', listener)
    return () => this.events.off('revoked', listener)
  }
}
