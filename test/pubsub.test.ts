/**
 * RedisPubSub's delivery guarantees on a real Redis reached through a TCP proxy: what Redis cannot take is delivered
 * to this instance at once and published to the others, in order, when it is back; consumers are told when they
 * stop hearing other instances and when to resync.
 */
import { randomBytes } from 'node:crypto'
import { afterAll, describe, expect, it } from 'vitest'
import type { FastifyBaseLogger } from 'fastify'
import { RedisPubSub } from '../src/pubsub/index.js'
import { realBackend } from './helpers.js'
import { until } from './support/wait.js'
import { TcpProxy, targetOf } from './tcp-proxy.js'

const notes: string[] = []
const log = { info: (...args: unknown[]) => notes.push(String(args.at(-1))), error() {}, warn() {}, debug() {} } as unknown as FastifyBaseLogger


const closing: Array<() => Promise<unknown>> = []
afterAll(async () => {
  for (const close of closing.reverse()) await close()
})

describe.runIf(realBackend)('RedisPubSub', () => {
  const redis = process.env.REDIS_URL!

  /** This instance (through a proxy the test cuts) and another one (straight to Redis), both listening on `c`. */
  async function pair(outboxLimit?: number) {
    const prefix = `sftest:${randomBytes(4).toString('hex')}:ps:`
    const proxy = await new TcpProxy(targetOf(redis, 6379)).start()
    const here = new RedisPubSub(proxy.url(redis), prefix, log, outboxLimit)
    const there = new RedisPubSub(redis, prefix, log)
    closing.push(() => proxy.cut(), () => here.close(), () => there.close())
    const got = { here: [] as string[], there: [] as string[] }
    const events: string[] = []
    here.on('down', () => events.push('down'))
    here.on('resync', () => events.push('resync'))
    const thereResyncs: number[] = []
    there.on('resync', () => thereResyncs.push(Date.now()))
    await until('both subscribed', () => here.hearing && there.hearing)
    await here.subscribe('c', (m) => got.here.push(m))
    await there.subscribe('c', (m) => got.there.push(m))
    events.length = 0
    thereResyncs.length = 0
    return { proxy, here, there, got, events, thereResyncs }
  }

  it('delivers here at once while Redis is cut, and to the other instance in order when it is back', async () => {
    const { proxy, here, got, events } = await pair()
    notes.length = 0
    await here.publish('c', 'before')
    await until('the first message on both sides', () => got.here.length === 1 && got.there.length === 1)

    await proxy.cut()
    await until('the cut noticed', () => !here.hearing)
    expect(events).toEqual(['down'])
    await expect(here.ping()).rejects.toThrow()
    const started = Date.now()
    for (let i = 1; i <= 5; i++) await here.publish('c', `m${i}`)
    await until('local delivery', () => got.here.length === 6)
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(got.here).toEqual(['before', 'm1', 'm2', 'm3', 'm4', 'm5'])
    expect(got.there).toEqual(['before'])

    await proxy.restore()
    await until('the queue published', () => got.there.length === 6)
    expect(got.there).toEqual(['before', 'm1', 'm2', 'm3', 'm4', 'm5'])
    await until('hearing again', () => here.hearing)
    expect(events).toEqual(['down', 'resync'])
    await here.ping()
    // Behind the queue, never ahead of it.
    await here.publish('c', 'after')
    await until('the next message', () => got.there.length === 7)
    expect(got.there.at(-1)).toBe('after')
    // Logged once down and once back, not per message.
    expect(notes.filter((w) => /Redis pub\/sub (unreachable|back)/.test(w))).toEqual([
      expect.stringMatching(/unreachable/),
      expect.stringMatching(/back/),
    ])
  })

  it('keeps a bounded queue; when it overflowed, every instance is told to resync', async () => {
    const { proxy, here, got, thereResyncs } = await pair(3)
    await proxy.cut()
    await until('the cut noticed', () => !here.hearing)
    for (let i = 1; i <= 5; i++) await here.publish('c', `m${i}`)
    await until('local delivery', () => got.here.length === 5)
    await proxy.restore()
    await until('the other instance told to resync', () => thereResyncs.length === 1)
    expect(got.there).toEqual(['m3', 'm4', 'm5'])
  })
})
