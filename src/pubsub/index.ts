import { EventEmitter } from 'node:events'
import type { FastifyBaseLogger } from 'fastify'
import { Redis } from 'ioredis'

export type Unsubscribe = () => Promise<void>

/**
 * `down`: messages from other instances may be missed from now on. `resync`: they are heard again (or some were
 * dropped), and whatever was missed must be caught up from the source of truth (the database).
 */
export type ChannelEvent = 'down' | 'resync'

/**
 * Fan-out between server instances: Redis pub/sub when configured, an in-process emitter otherwise.
 *
 * Delivery: a message reaches this instance's own handlers even when Redis does not take it (at once, then it is
 * published to the others when Redis is back, in order), so consumers see it at least once and must be idempotent
 * (a PUBLISH cut mid-flight may have been taken and is published again). What other instances publish while this
 * one's subscription is down is lost by Redis: `resync` says when to catch up.
 */
export interface PubSub {
  readonly kind: 'redis' | 'memory'
  /** Never fails (see above). */
  publish(channel: string, message: string): Promise<void>
  subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe>
  /** False while messages from other instances may be missed. */
  readonly hearing: boolean
  /** Listeners run synchronously, all of them before any resumes asynchronous work. */
  on(event: ChannelEvent, listener: () => void): () => void
  /** Fails while Redis does not answer or the subscription is down (readiness). */
  ping(): Promise<void>
  close(): Promise<void>
}

export class MemoryPubSub implements PubSub {
  readonly kind = 'memory' as const
  readonly hearing = true
  private readonly emitter = new EventEmitter().setMaxListeners(0)

  async publish(channel: string, message: string): Promise<void> {
    // Asynchronous like Redis: a publisher never runs subscriber code on its own stack.
    queueMicrotask(() => this.emitter.emit(channel, message))
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe> {
    this.emitter.on(channel, handler)
    return async () => {
      this.emitter.off(channel, handler)
    }
  }

  /** One process: nothing is ever missed, so neither event happens. */
  on(): () => void {
    return () => {}
  }

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.emitter.removeAllListeners()
  }
}

/** Messages kept for other instances while Redis is away; past this the oldest go and every instance resyncs. */
const OUTBOX_LIMIT = 10_000
/** Published after an outbox overflowed: every instance missed messages, and resyncs. */
const GAP_CHANNEL = '_gap'
/** A publish that takes longer counts as failed: this instance's sockets must not wait on a hung connection. */
const PUBLISH_TIMEOUT_MS = 1_000

export class RedisPubSub implements PubSub {
  readonly kind = 'redis' as const
  hearing = false
  private readonly publisher: Redis
  private readonly subscriber: Redis
  private readonly handlers = new Map<string, Set<(message: string) => void>>()
  private readonly events = new EventEmitter().setMaxListeners(0)
  /** What Redis did not take, oldest first, to publish when it is back. */
  private readonly outbox: Array<{ channel: string; message: string }> = []
  private dropped = 0
  private flushing = false
  /** Counts the subscriber's connections, so a resubscription outlived by its connection is not trusted. */
  private connection = 0
  /** When the channel last went down (null while healthy): logged once down, once back. */
  private downSince: number | null = null
  private closing = false

  constructor(
    url: string,
    private readonly prefix: string,
    private readonly log: FastifyBaseLogger,
    private readonly outboxLimit = OUTBOX_LIMIT,
  ) {
    const retryStrategy = (n: number) => Math.min(n * 200, 2_000)
    this.publisher = new Redis(url, {
      retryStrategy,
      maxRetriesPerRequest: 1,
      enableOfflineQueue: false,
      commandTimeout: PUBLISH_TIMEOUT_MS,
      // A PUBLISH cut mid-flight is in the outbox already; ioredis must not send it a third time.
      autoResendUnfulfilledCommands: false,
    })
    // Resubscribed by hand on every connection, so that `resync` is emitted once the subscription is live again.
    this.subscriber = new Redis(url, { retryStrategy, maxRetriesPerRequest: null, autoResubscribe: false })
    this.publisher.on('error', () => {})
    this.subscriber.on('error', () => {})
    this.publisher.on('ready', () => void this.flush())
    this.publisher.on('close', () => this.wentDown())
    this.subscriber.on('ready', () => void this.resubscribe())
    this.subscriber.on('close', () => {
      this.connection++
      if (this.hearing) {
        this.hearing = false
        this.events.emit('down')
      }
      this.wentDown()
    })
    this.subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.prefix + GAP_CHANNEL) this.events.emit('resync')
      else this.dispatch(channel, message)
    })
  }

  async publish(channel: string, message: string): Promise<void> {
    const full = this.prefix + channel
    // Behind a non-empty outbox, a message waits its turn: each instance's messages are published in order.
    if (!this.outbox.length && this.publisher.status === 'ready') {
      try {
        await this.publisher.publish(full, message)
        return
      } catch {
        // Not taken, or cut mid-flight (perhaps taken): kept, and published again below.
      }
    }
    queueMicrotask(() => this.dispatch(full, message))
    if (this.outbox.length >= this.outboxLimit) {
      this.outbox.shift()
      this.dropped++
    }
    this.outbox.push({ channel: full, message })
    this.wentDown()
    void this.flush()
  }

  /** Publishes the outbox in order while Redis takes it; then, if messages were dropped, tells everyone to resync. */
  private async flush(): Promise<void> {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.publisher.status === 'ready' && (this.outbox.length || this.dropped)) {
        const next = this.outbox[0]
        if (next) {
          await this.publisher.publish(next.channel, next.message)
          this.outbox.shift()
        } else {
          await this.publisher.publish(this.prefix + GAP_CHANNEL, String(this.dropped))
          this.dropped = 0
        }
      }
    } catch {
      // Retried at the next connection, or in a moment if this one stays up (a timeout, not a disconnection).
      if (this.publisher.status === 'ready') setTimeout(() => void this.flush(), PUBLISH_TIMEOUT_MS).unref()
    } finally {
      this.flushing = false
    }
    this.cameBack()
  }

  private async resubscribe(): Promise<void> {
    const connection = this.connection
    try {
      await this.subscriber.subscribe(this.prefix + GAP_CHANNEL, ...this.handlers.keys())
    } catch {
      return
    }
    // Lost again before Redis answered: the next connection resubscribes.
    if (connection !== this.connection || this.closing) return
    this.hearing = true
    this.events.emit('resync')
    this.cameBack()
  }

  private dispatch(channel: string, message: string): void {
    for (const handler of this.handlers.get(channel) ?? []) handler(message)
  }

  private wentDown(): void {
    if (this.downSince !== null || this.closing) return
    this.downSince = Date.now()
    // Info, not warn: the cache's connection already warns once that Redis is unreachable (context.ts); this says
    // what it means for pub/sub, and when its catch-up is done.
    this.log.info(
      'Redis pub/sub unreachable: messages from other instances (pushes, revocations) are missed until it returns, ' +
        'then caught up from the database; messages from this instance reach its own sockets now and the others ' +
        'when it returns; session checks read the database meanwhile',
    )
  }

  private cameBack(): void {
    if (this.downSince === null || !this.hearing || this.outbox.length || this.dropped) return
    if (this.publisher.status !== 'ready') return
    this.log.info({ downMs: Date.now() - this.downSince }, 'Redis pub/sub back: resubscribed, queued messages published, sockets catching up')
    this.downSince = null
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe> {
    const full = this.prefix + channel
    let set = this.handlers.get(full)
    if (!set) {
      set = new Set()
      this.handlers.set(full, set)
      // Connected: return once the subscription is live. Otherwise the next connection subscribes it.
      if (this.subscriber.status === 'ready') await this.settle(this.subscriber.subscribe(full))
    }
    set.add(handler)
    return async () => {
      set.delete(handler)
      if (set.size === 0 && this.handlers.get(full) === set) {
        this.handlers.delete(full)
        if (this.subscriber.status === 'ready') await this.settle(this.subscriber.unsubscribe(full))
      }
    }
  }

  /** Waits for a (un)subscription, but never for long: neither a start nor a shutdown may hang on Redis. */
  private async settle(command: Promise<unknown>): Promise<void> {
    await Promise.race([command.catch(() => {}), new Promise((resolve) => setTimeout(resolve, 1_000).unref())])
  }

  on(event: ChannelEvent, listener: () => void): () => void {
    this.events.on(event, listener)
    return () => this.events.off(event, listener)
  }

  async ping(): Promise<void> {
    if (!this.hearing) throw new Error('Redis subscription down')
    await this.publisher.ping()
  }

  /**
   * What is still in the outbox is lost to other instances: those whose own subscription was down resync anyway, but
   * one that was hearing all along learns of it only when its clients reconnect with `since`.
   */
  async close(): Promise<void> {
    this.closing = true
    this.publisher.disconnect()
    this.subscriber.disconnect()
  }
}

/** Where the instances configured with REDIS_PREFIX `prefix` publish and subscribe. */
const channelPrefix = (prefix: string) => `${prefix}ps:`

export function createPubSub(redisUrl: string | undefined, prefix: string, log: FastifyBaseLogger): PubSub {
  return redisUrl ? new RedisPubSub(redisUrl, channelPrefix(prefix), log) : new MemoryPubSub()
}

/**
 * One message to the running instances from a process that is not one of them (a command): true once Redis took
 * it, false when it did not within `timeoutMs`.
 */
export async function publishOnce(redisUrl: string, prefix: string, channel: string, message: string, timeoutMs = 5_000): Promise<boolean> {
  const redis = new Redis(redisUrl, { lazyConnect: true, connectTimeout: timeoutMs, commandTimeout: timeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null })
  redis.on('error', () => {})
  try {
    await redis.connect()
    await redis.publish(channelPrefix(prefix) + channel, message)
    return true
  } catch {
    return false
  } finally {
    redis.disconnect()
  }
}
