import { Redis } from 'ioredis'
import type { InvalidationFeed, InvalidationListener } from './backend.js'

/** A sync not answered within this falls back to the shared cache (correct, one round trip more). */
const SYNC_TIMEOUT_MS = 250

/**
 * Every instance's beginWrite and endWrite, heard on a subscription of its own. The cache scripts PUBLISH the scopes
 * they mark or bump from inside the script, so Redis queues the message to every subscriber before it replies to
 * the writer.
 *
 * That alone does not bound when a reader PROCESSES the message: it may still sit in this process's socket when a
 * client, answered by the writer, asks this instance. So `sync` sends a PING on the same connection and waits for
 * the PONG: Redis answers a connection in order, so every message published before it processed the PING (every
 * write whose response any client has seen before this read arrived) has been handed to the listeners by then.
 * Reads arriving in one turn of the event loop share one PING.
 */
export class RedisInvalidationFeed implements InvalidationFeed {
  private readonly connection: Redis
  private readonly listeners: InvalidationListener[] = []
  private subscribed = false
  private batch: Promise<boolean> | undefined

  constructor(url: string, channel: string, keyPrefix: string) {
    const connection = new Redis(url, {
      connectionName: channel,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      // Messages published while the connection was down are lost: resubscribing is done by hand, below, after the
      // listeners have been told that anything may have changed.
      autoResubscribe: false,
      retryStrategy: (attempt) => Math.min(attempt * 200, 2_000),
    })
    connection.on('error', () => {})
    connection.on('ready', () => {
      connection.subscribe(channel).then(
        () => {
          this.subscribed = connection.status === 'ready'
        },
        () => connection.disconnect(true),
      )
    })
    connection.on('close', () => {
      if (!this.subscribed) return
      this.subscribed = false
      this.emit(null)
    })
    connection.on('message', (_channel: string, message: string) => {
      this.emit(message.split('\n').map((key) => key.slice(keyPrefix.length)))
    })
    this.connection = connection
  }

  get live(): boolean {
    return this.subscribed
  }

  listen(listener: InvalidationListener): void {
    this.listeners.push(listener)
  }

  sync(): Promise<boolean> {
    if (!this.subscribed) return Promise.resolve(false)
    // Joined only until the PING is sent: a read that arrives after must not be answered by an earlier PING.
    this.batch ??= new Promise<boolean>((resolve) => {
      setImmediate(() => {
        this.batch = undefined
        if (!this.subscribed) return resolve(false)
        const timer = setTimeout(() => resolve(false), SYNC_TIMEOUT_MS)
        this.connection
          .ping()
          .then(
            () => resolve(this.subscribed),
            () => resolve(false),
          )
          .finally(() => clearTimeout(timer))
      })
    })
    return this.batch
  }

  private emit(scopes: readonly string[] | null): void {
    for (const listener of this.listeners) listener(scopes)
  }

  close(): void {
    this.subscribed = false
    this.connection.disconnect()
  }
}
