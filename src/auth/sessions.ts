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

/** What a revocation is published on: a user id. */
export const REVOCATION_CHANNEL = 'auth.revoked'

/**
 * What every authenticated request needs to know about its user (active? staff? current token version?), mirrored
 * in-process so that a request costs no database query. A revocation (logout, password change, deactivation,
 * "revoke sessions") updates the database, then tells every instance over pub/sub to drop its copy, and closes
 * the user's sockets through `onRevoked`. While this instance does not hear pub/sub (Redis unreachable), a copy
 * may have missed a revocation, so none is kept or trusted: every request reads the database (one primary-key
 * lookup; exact, where a short lifetime would still let a revoked token through for that long). When pub/sub is
 * back the mirror starts empty. Entries also expire after `ttlMs`, a backstop for a connection that died
 * silently (no reset, so not yet noticed).
 */
export class SessionDirectory {
  private readonly entries = new Map<number, Entry>()
  private readonly loading = new Map<number, Promise<SessionState | null>>()
  private readonly events = new EventEmitter().setMaxListeners(0)
  private unsubscribe: Unsubscribe | undefined
  private unwatch: Array<() => void> = []
  /** Bumped by every revocation and reset: a load that started before one must not store what it read. */
  private epoch = 0

  constructor(
    private readonly db: Db,
    private readonly pubsub: PubSub,
    private readonly ttlMs = 30_000,
    private readonly maxEntries = 100_000,
  ) {}

  async start(): Promise<void> {
    this.unsubscribe = await this.pubsub.subscribe(REVOCATION_CHANNEL, (message) => {
      const userId = Number(message)
      if (Number.isSafeInteger(userId)) this.forget(userId)
    })
    this.unwatch = [this.pubsub.on('down', () => this.reset()), this.pubsub.on('resync', () => this.reset())]
  }

  async stop(): Promise<void> {
    for (const stop of this.unwatch) stop()
    await this.unsubscribe?.()
  }

  async get(userId: number): Promise<SessionState | null> {
    // Deaf to revocations: no copy, and no read already under way (it may predate a revocation made elsewhere).
    if (!this.pubsub.hearing) return this.read(userId)
    const entry = this.entries.get(userId)
    if (entry && entry.expiresAt > Date.now()) return entry
    const pending = this.loading.get(userId)
    if (pending) return pending
    const load: Promise<SessionState | null> = this.load(userId).finally(() => {
      if (this.loading.get(userId) === load) this.loading.delete(userId)
    })
    this.loading.set(userId, load)
    return load
  }

  private async read(userId: number): Promise<SessionState | null> {
    const [row] = await this.db
      .select({ isStaff: users.isStaff, isActive: users.isActive, tokenVersion: users.tokenVersion })
      .from(users)
      .where(eq(users.id, userId))
    return row ?? null
  }

  private async load(userId: number): Promise<SessionState | null> {
    const epoch = this.epoch
    const row = await this.read(userId)
    if (!row) return null
    if (epoch !== this.epoch || !this.pubsub.hearing) return row
    if (this.entries.size >= this.maxEntries) this.entries.delete(this.entries.keys().next().value!)
    this.entries.set(userId, { ...row, expiresAt: Date.now() + this.ttlMs })
    return row
  }

  /** Forgetting twice is harmless: a revocation can arrive both locally and over pub/sub, or be re-published. */
  private forget(userId: number): void {
    this.epoch++
    this.entries.delete(userId)
    // A request from now on must not join a read that may have started before the revocation committed.
    this.loading.delete(userId)
    this.events.emit('revoked', userId)
  }

  private reset(): void {
    this.epoch++
    this.entries.clear()
    this.loading.clear()
  }

  /** Call after the transaction that changed the user's sessions has committed. */
  async revoked(userId: number): Promise<void> {
    this.forget(userId)
    await this.pubsub.publish(REVOCATION_CHANNEL, String(userId))
  }

  /** Runs `listener` on every instance when a user's sessions are revoked (e.g. to close their sockets). */
  onRevoked(listener: (userId: number) => void): () => void {
    this.events.on('revoked', listener)
    return () => this.events.off('revoked', listener)
  }
}
