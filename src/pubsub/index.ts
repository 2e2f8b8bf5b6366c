import { EventEmitter } from 'node:events'
import { Redis } from 'ioredis'

export type Unsubscribe = () => Promise<void>

/** Fan-out between server instances: Redis pub/sub when configured, an in-process emitter otherwise. */
export interface PubSub {
  readonly kind: 'redis' | 'memory'
  publish(channel: string, message: string): Promise<void>
  subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe>
  ping(): Promise<void>
  close(): Promise<void>
}

export class MemoryPubSub implements PubSub {
  readonly kind = 'memory' as const
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

  async ping(): Promise<void> {}

  async close(): Promise<void> {
    this.emitter.removeAllListeners()
  }
}

export class RedisPubSub implements PubSub {
  readonly kind = 'redis' as const
  private readonly publisher: Redis
  private readonly subscriber: Redis
  private readonly handlers = new Map<string, Set<(message: string) => void>>()

  constructor(url: string, private readonly prefix: string) {
    const retryStrategy = (n: number) => Math.min(n * 200, 2_000)
    this.publisher = new Redis(url, { retryStrategy, maxRetriesPerRequest: 1, enableOfflineQueue: false })
    // A SUBSCRIBE made while Redis is away waits in the offline queue for as long as it takes, and ioredis
    // resubscribes by itself after every reconnect (autoResubscribe): fan-out resumes when Redis returns.
    this.subscriber = new Redis(url, { retryStrategy, maxRetriesPerRequest: null })
    this.publisher.on('error', () => {})
    this.subscriber.on('error', () => {})
    this.subscriber.on('message', (channel: string, message: string) => {
      for (const handler of this.handlers.get(channel) ?? []) handler(message)
    })
  }

  async publish(channel: string, message: string): Promise<void> {
    await this.publisher.publish(this.prefix + channel, message)
  }

  async subscribe(channel: string, handler: (message: string) => void): Promise<Unsubscribe> {
    const full = this.prefix + channel
    let set = this.handlers.get(full)
    if (!set) {
      set = new Set()
      this.handlers.set(full, set)
      // Connected: return once the subscription is live. Disconnected: do not hold start-up hostage to Redis.
      await this.settle(this.subscriber.subscribe(full))
    }
    set.add(handler)
    return async () => {
      set.delete(handler)
      if (set.size === 0 && this.handlers.get(full) === set) {
        this.handlers.delete(full)
        await this.settle(this.subscriber.unsubscribe(full))
      }
    }
  }

  /**
   * Waits for a (un)subscription while Redis answers, but never for long: while Redis is away the command waits in
   * the offline queue until it returns, and neither a start nor a shutdown may hang on that.
   */
  private async settle(command: Promise<unknown>): Promise<void> {
    const done = command.catch(() => {})
    if (this.subscriber.status !== 'ready') return
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, 1_000).unref())])
  }

  async ping(): Promise<void> {
    await this.publisher.ping()
  }

  async close(): Promise<void> {
    this.publisher.disconnect()
    this.subscriber.disconnect()
  }
}

export function createPubSub(redisUrl: string | undefined, prefix: string): PubSub {
  return redisUrl ? new RedisPubSub(redisUrl, `${prefix}ps:`) : new MemoryPubSub()
}
