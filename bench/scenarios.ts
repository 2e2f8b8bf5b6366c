import { fork } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import argon2 from 'argon2'
import { encodeCursor } from '../src/catalogue/query.js'
import { BENCH_PASSWORD, type Fixture } from './fixture.js'
import { type Generator, type KindStats, type Load, type LoadOptions, type Measured, measure, non2xx, percentile, summarize } from './load.js'
import { freePort, startNode } from './process.js'

export interface BenchOptions extends LoadOptions {
  sockets: number
}

/** One server run: the service at `base` with `workers` processes, measured by `generator`. */
export interface Pass {
  base: string
  workers: number
  generator: Generator
  options: BenchOptions
  /** Size of the cached list page 1, found by the ceiling scenario (the Redis limit GETs a value this size). */
  shared: { pageBytes?: number }
}

/** What a row's throughput is compared with: its pass's ceiling (reads), or a pgbench limit (writes). */
export type Comparison = 'ceiling' | 'order' | 'add-to-cart'

export interface Result {
  name: string
  workers?: number
  generator: string
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  notes?: string
  compare?: { with: Comparison; rate: number }
  /** The comparison, worded (filled in by run.ts once the ceiling and the limits are known). */
  vs?: string
}

interface Scenario {
  /** Cached scenarios run against a server with the cache on; the others with CACHE_TTL_SECONDS=0. */
  cached: boolean
  /** What its rows are compared with: run.ts measures those too whenever the scenario runs. */
  against?: Comparison[]
  run(pass: Pass, fixture: Fixture): Promise<Result[]>
}

/** Every status other than 2xx, by code: "404 × 3, 503 × 1". */
const failures = (m: Measured) =>
  Object.entries(m.statuses)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, n]) => `${code} × ${n}`)
    .join(', ')

function row(name: string, m: Measured, notes?: string, compare?: Comparison): Result {
  const failed = failures(m)
  const noted = [notes, failed && `non-2xx: ${failed}`].filter(Boolean).join('; ')
  return {
    name,
    generator: m.generator,
    rps: m.rps,
    p50: m.p50,
    p99: m.p99,
    errors: m.errors,
    non2xx: non2xx(m),
    ...(noted ? { notes: noted } : {}),
    ...(compare ? { compare: { with: compare, rate: m.rps } } : {}),
  }
}

const load = (pass: Pass, l: Load, options: Partial<LoadOptions> = {}) => measure(pass.generator, pass.base, l, { ...pass.options, ...options })
const paths = (list: string[]): Load => ({ kind: 'requests', requests: list.map((path) => ({ path })) })

/** A short run first, so the first measured second is not the JIT's. */
async function warmed(pass: Pass, l: Load, base = pass.base): Promise<Measured> {
  await measure(pass.generator, base, l, { ...pass.options, duration: Math.min(2, pass.options.duration) })
  return measure(pass.generator, base, l, pass.options)
}

async function warm(base: string, list: string[]): Promise<void> {
  for (let i = 0; i < list.length; i += 20) {
    await Promise.all(list.slice(i, i + 20).map((p) => fetch(base + p).then((r) => r.arrayBuffer())))
  }
}

async function argonRate(): Promise<number> {
  const params = { type: argon2.argon2id, memoryCost: 19456, timeCost: 2, parallelism: 1 } as const
  let count = 0
  const end = performance.now() + 2000
  while (performance.now() < end) {
    await argon2.hash(BENCH_PASSWORD, params)
    count++
  }
  return count / 2
}

const ms = (n: number) => n.toFixed(1)

const none: KindStats = { count: 0, ok: 0, p50: 0, p99: 0 }

/** Buyers adding one random product and placing the order, over and over: the cycle of the order limit (bench/limit.ts). */
async function orders(pass: Pass, fixture: Fixture, name: string): Promise<Result> {
  const m = await load(pass, { kind: 'buyers', cycle: 'order', tokens: fixture.buyers.tokens, products: fixture.orderProducts })
  const place = m.kinds.place ?? none
  const add = m.kinds.add ?? none
  const placed = place.ok / m.seconds
  const notes =
    `${placed.toFixed(0)} orders/s placed (${place.ok} of ${place.count}); req/s and latency are the place request's, ` +
    `each after an add-to-cart (p50 ${ms(add.p50)} / p99 ${ms(add.p99)} ms)`
  return { ...row(name, m, notes), rps: place.count / m.seconds, p50: place.p50, p99: place.p99, compare: { with: 'order', rate: placed } }
}

export const scenarios: Record<string, Scenario> = {
  ceiling: {
    cached: true,
    run: async (pass) => {
      // The exact bytes of the cached list page 1, served by a bare node:http server with as many processes.
      const url = `${pass.base}/api/v1/products`
      await (await fetch(url)).arrayBuffer()
      const body = Buffer.from(await (await fetch(url)).arrayBuffer())
      pass.shared.pageBytes = body.length
      const dir = mkdtempSync(join(tmpdir(), 'bench-ceiling-'))
      const port = await freePort()
      try {
        writeFileSync(join(dir, 'page.json'), body)
        const server = await startNode(
          'bench/ceiling.ts',
          { PORT: String(port), CEILING_WORKERS: String(pass.workers), CEILING_BODY: join(dir, 'page.json') },
          `http://127.0.0.1:${port}/`,
        )
        try {
          const m = await warmed(pass, paths(['/api/v1/products']), `http://127.0.0.1:${port}`)
          return [row('ceiling', m, `bare node:http, ${pass.workers === 1 ? 'one process' : `${pass.workers} processes`}, the ${body.length} bytes of list page 1`)]
        } finally {
          await server.stop()
        }
      } finally {
        rmSync(dir, { recursive: true, force: true })
      }
    },
  },
  'list-cached': {
    cached: true,
    against: ['ceiling'],
    run: async (pass) => [row('list-cached', await warmed(pass, paths(['/api/v1/products'])), undefined, 'ceiling')],
  },
  'list-filtered-cached': {
    cached: true,
    against: ['ceiling'],
    run: async (pass, fixture) => {
      await warm(pass.base, fixture.filters)
      return [row('list-filtered-cached', await load(pass, paths(fixture.filters)), '200 filter combinations', 'ceiling')]
    },
  },
  detail: {
    cached: true,
    against: ['ceiling'],
    run: async (pass, fixture) => {
      const list = fixture.sampleIds.map((id) => `/api/v1/products/${id}`)
      await warm(pass.base, list)
      return [row('detail', await load(pass, paths(list)), `${list.length} random ids`, 'ceiling')]
    },
  },
  login: {
    cached: true,
    run: async (pass, fixture) => {
      const requests = fixture.loginEmails.map((email) => ({ method: 'POST', path: '/api/v1/auth/token', body: JSON.stringify({ email, password: BENCH_PASSWORD }) }))
      const rate = await argonRate()
      const m = await load(pass, { kind: 'requests', requests, headers: { 'content-type': 'application/json' } })
      // The generator stops with a login in flight on every connection, and each worker keeps hashing them (seconds
      // of CPU): logins sent now queue behind that backlog, so the next scenario starts once it is gone.
      const drain = (i: number) =>
        fetch(`${pass.base}/api/v1/auth/token`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: requests[i % requests.length]!.body })
      await Promise.all(Array.from({ length: 2 * pass.workers }, (_, i) => drain(i).then((r) => r.arrayBuffer())))
      return [row('login', m, `argon2id (19 MiB, t=2) ${rate.toFixed(0)} hashes/s on one core`)]
    },
  },
  order: {
    cached: true,
    against: ['order'],
    run: async (pass, fixture) => [await orders(pass, fixture, 'order')],
  },
  'add-to-cart': {
    cached: true,
    against: ['add-to-cart'],
    run: async (pass, fixture) => {
      const buyers = fixture.buyers.tokens
      const m = await load(pass, { kind: 'buyers', cycle: 'add', tokens: buyers, products: fixture.orderProducts })
      const add = m.kinds.add ?? none
      // Empty carts again for whatever runs next (each buyer's cart holds up to ten lines now).
      await Promise.all(
        buyers.map((token) => fetch(`${pass.base}/api/v1/cart`, { method: 'DELETE', headers: { authorization: `Bearer ${token}` } }).then((r) => r.arrayBuffer())),
      )
      return [
        {
          ...row('add-to-cart', m, `each buyer adds one of its own ten products (bounded carts), ${add.ok} added`),
          p50: add.p50,
          p99: add.p99,
          compare: { with: 'add-to-cart', rate: add.ok / m.seconds },
        },
      ]
    },
  },
  mixed: {
    cached: true,
    against: ['ceiling', 'order'],
    run: async (pass, fixture) => {
      // The catalogue cache under order traffic: orders at full speed alongside the 200 cached filter combinations.
      await warm(pass.base, fixture.filters)
      const [lists, ordered] = await Promise.all([load(pass, paths(fixture.filters)), orders(pass, fixture, 'mixed: orders')])
      const hits = lists.cache.HIT ?? 0
      const all = Object.values(lists.cache).reduce((a, b) => a + b, 0)
      return [row('mixed: lists', lists, `cache hit rate ${((100 * hits) / Math.max(1, all)).toFixed(1)}% while orders run`, 'ceiling'), ordered]
    },
  },
  'ws-fanout': {
    cached: true,
    run: async (pass, fixture) => [await wsFanout(pass, fixture)],
  },
  // At a million products (`npm run bench -- --products 1000000 --scenario list-uncached`): every list statement
  // shape's plan at that size is printed by bench/plans.ts.
  'list-uncached': {
    cached: false,
    against: ['ceiling'],
    run: async (pass, fixture) => {
      const deepPage = Math.max(1, Math.floor(fixture.productCount / 10 / 2))
      // The same depth by keyset: a cursor positioned half-way through the catalogue by price.
      const deepCursor = encodeCursor('price', { value: fixture.medianPrice, id: 0, backward: false })
      const search = `/api/v1/products?search=${encodeURIComponent(fixture.searchTerm)}`
      return [
        row('list-uncached', await load(pass, paths(fixture.filters)), '200 filter combinations, cache off', 'ceiling'),
        row('list-uncached-deep-offset', await load(pass, paths([`/api/v1/products?page=${deepPage}`])), `?page=${deepPage} (OFFSET)`, 'ceiling'),
        row(
          'list-uncached-deep-cursor',
          await load(pass, paths([`/api/v1/products?ordering=price&cursor=${deepCursor}`])),
          `?ordering=price&cursor=… at the median price (${fixture.medianPrice})`,
          'ceiling',
        ),
        row('list-uncached-search', await load(pass, paths([search])), `?search=${fixture.searchTerm}`, 'ceiling'),
        row('list-uncached-cursors', await load(pass, paths(fixture.cursors)), `${fixture.cursors.length} keyset pages at random depths, every ordering`, 'ceiling'),
      ]
    },
  },
}

export const scenarioNames = Object.keys(scenarios)

const wallNow = () => performance.timeOrigin + performance.now()

/**
 * 200 status changes a second, each on another listener's order, while the listeners sit in their own process
 * (bench/fanout-clients.ts): the latency is the service's, from the change sent to its notification received.
 */
async function wsFanout(pass: Pass, fixture: Fixture): Promise<Result> {
  const clients = fork(fileURLToPath(new URL('./fanout-clients.ts', import.meta.url)), [], { execArgv: ['--import', 'tsx'] })
  const reply = <T>() =>
    new Promise<T>((resolve, reject) => {
      const exited = (code: number | null) => reject(new Error(`the ws-fanout clients exited with ${code}`))
      clients.once('exit', exited)
      clients.once('message', (message) => {
        clients.off('exit', exited)
        resolve(message as T)
      })
    })
  try {
    const opened = reply<{ ready: true }>()
    clients.send({ wsBase: pass.base.replace('http', 'ws'), sockets: fixture.socketUsers })
    await opened
    const seconds = Math.min(30, Math.max(1, pass.options.duration * 3))
    const total = Math.min(fixture.socketUsers.length, 200 * seconds)
    const sentAt = new Map<number, number>()
    const answered: number[] = []
    let failed = 0
    const pending: Promise<void>[] = []
    const startedAt = performance.now()
    for (let i = 0; i < total; i++) {
      const wait = startedAt + (i * 1000) / 200 - performance.now()
      if (wait > 0) await new Promise((r) => setTimeout(r, wait))
      const { orderId } = fixture.socketUsers[i]!
      sentAt.set(orderId, wallNow())
      pending.push(
        fetch(`${pass.base}/api/v1/orders/${orderId}/status`, {
          method: 'PATCH',
          headers: { authorization: `Bearer ${fixture.staffToken}`, 'content-type': 'application/json' },
          body: '{"status":"shipped"}',
        })
          .then(async (res) => {
            await res.arrayBuffer()
            answered.push(wallNow() - sentAt.get(orderId)!)
            if (!res.ok) failed++
          })
          .catch(() => {
            failed++
          }),
      )
    }
    const sendSeconds = (performance.now() - startedAt) / 1000 + 1 / 200
    await Promise.all(pending)
    const collected = reply<{ received: [number, number][]; duplicates: number }>()
    clients.send({ collect: total - failed })
    const { received, duplicates } = await collected
    const latencies = received.flatMap(([orderId, at]) => (sentAt.has(orderId) ? [at - sentAt.get(orderId)!] : [])).sort((a, b) => a - b)
    const delivered = latencies.length
    const patch = summarize(answered, answered.length)
    return {
      name: 'ws-fanout',
      generator: 'ws clients in their own process',
      rps: total / sendSeconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      errors: failed,
      non2xx: failed,
      notes: `${fixture.socketUsers.length} sockets; ${total} changes; delivered ${delivered}; lost ${total - failed - delivered}; duplicates ${duplicates}; latency = status change sent → notification received (the PATCH itself answered in p50 ${ms(patch.p50)} / p99 ${ms(patch.p99)} ms)`,
    }
  } finally {
    clients.kill()
  }
}
