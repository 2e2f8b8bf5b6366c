import { performance } from 'node:perf_hooks'
import autocannon, { type Options, type Request } from 'autocannon'
import argon2 from 'argon2'
import WebSocket from 'ws'
import { encodeCursor } from '../src/catalogue/query.js'
import { BENCH_PASSWORD, type Fixture } from './fixture.js'

export interface Target {
  base: string
  ceiling: string
}

export interface Result {
  name: string
  workers?: number
  rps: number
  p50: number
  p99: number
  errors: number
  non2xx: number
  notes?: string
}

interface BenchOptions {
  duration: number
  connections: number
  sockets: number
}

interface Scenario {
  /** Cached scenarios run against a server with the cache on; the others with CACHE_TTL_SECONDS=0. */
  cached: boolean
  run(target: Target, fixture: Fixture, options: BenchOptions): Promise<Result[]>
}

async function cannon(name: string, options: BenchOptions, extra: Omit<Options, 'url'> & { url: string }, notes?: string): Promise<Result> {
  const result = await autocannon({ connections: options.connections, duration: options.duration, timeout: 10, ...extra })
  const fiveXX = Object.entries(result.statusCodeStats ?? {})
    .filter(([code]) => code.startsWith('5'))
    .reduce((sum, [, stat]) => sum + stat.count, 0)
  return {
    name,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    non2xx: result.non2xx,
    notes: [notes, fiveXX ? `${fiveXX} × 5xx` : ''].filter(Boolean).join('; ') || undefined,
  }
}

/** Cycles through `paths`, one per request, across every connection. */
function rotating(paths: string[]): Request[] {
  let i = 0
  return [
    {
      setupRequest: (request) => {
        request.path = paths[i++ % paths.length]!
        return request
      },
    },
  ]
}

async function warm(base: string, paths: string[]): Promise<void> {
  for (let i = 0; i < paths.length; i += 20) {
    await Promise.all(paths.slice(i, i + 20).map((p) => fetch(base + p).then((r) => r.arrayBuffer())))
  }
}

const warmup = (options: BenchOptions): BenchOptions => ({ ...options, duration: Math.min(2, options.duration) })

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

/**
 * Buyers adding one item and placing an order, over and over. Each add-to-cart + place cycle borrows a buyer no
 * other connection is using and gives it back after (autocannon shares request objects between connections, so
 * per-connection headers cannot carry the token).
 */
function orderLoad(target: Target, fixture: Fixture, options: BenchOptions) {
  let placed = 0
  let refused = 0
  const ids = fixture.orderProductIds
  const idle = [...fixture.orderTokens]
  const headers = (token: string) => ({ authorization: `Bearer ${token}`, 'content-type': 'application/json' })
  const requests: Request[] = [
    {
      method: 'POST',
      path: '/api/v1/cart/items',
      setupRequest: (request, context) => {
        context.token = idle.pop() ?? fixture.orderTokens[0]
        const body = JSON.stringify({ product_id: ids[Math.floor(Math.random() * ids.length)], quantity: 1 })
        return { ...request, headers: headers(context.token as string), body }
      },
    },
    {
      method: 'POST',
      path: '/api/v1/orders',
      setupRequest: (request, context) => ({ ...request, headers: headers(context.token as string), body: '{}' }),
      onResponse: (status, _body, context) => {
        if (status === 201) placed++
        else refused++
        idle.push(context.token as string)
      },
    },
  ]
  const connections = Math.min(options.connections, fixture.orderTokens.length)
  return {
    run: cannon('order', { ...options, connections }, { url: target.base, requests }),
    summary: () => `${(placed / options.duration).toFixed(0)} orders/s placed (${placed} orders, ${refused} refused once sold out)`,
  }
}

function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

async function wsFanout(target: Target, fixture: Fixture, options: BenchOptions): Promise<Result> {
  const wsBase = target.base.replace('http', 'ws')
  const sockets: WebSocket[] = []
  const sentAt = new Map<number, number>()
  const latencies: number[] = []
  let duplicates = 0
  const seen = new Set<number>()
  for (let i = 0; i < fixture.socketUsers.length; i += 250) {
    await Promise.all(
      fixture.socketUsers.slice(i, i + 250).map(
        (user) =>
          new Promise<void>((resolve, reject) => {
            const socket = new WebSocket(`${wsBase}/ws/notifications?token=${user.token}`)
            socket.on('open', () => resolve())
            socket.on('error', reject)
            socket.on('message', (data) => {
              const message = JSON.parse(String(data)) as { type: string; notification?: { order_id: number } }
              const orderId = message.notification?.order_id
              if (message.type !== 'order.status_changed' || orderId === undefined) return
              const start = sentAt.get(orderId)
              if (start === undefined) return
              if (seen.has(orderId)) duplicates++
              else {
                seen.add(orderId)
                latencies.push(performance.now() - start)
              }
            })
            sockets.push(socket)
          }),
      ),
    )
  }
  // 200 status changes a second for the run, each on another user's order.
  const seconds = Math.min(30, Math.max(1, options.duration * 3))
  const total = Math.min(fixture.socketUsers.length, 200 * seconds)
  let failed = 0
  const pending: Promise<void>[] = []
  const startedAt = performance.now()
  for (let i = 0; i < total; i++) {
    const due = startedAt + (i * 1000) / 200
    const wait = due - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
    const { orderId } = fixture.socketUsers[i]!
    sentAt.set(orderId, performance.now())
    pending.push(
      fetch(`${target.base}/api/v1/orders/${orderId}/status`, {
        method: 'PATCH',
        headers: { authorization: `Bearer ${fixture.staffToken}`, 'content-type': 'application/json' },
        body: '{"status":"shipped"}',
      })
        .then(async (res) => {
          await res.arrayBuffer()
          if (!res.ok) failed++
        })
        .catch(() => {
          failed++
        }),
    )
  }
  await Promise.all(pending)
  const deadline = performance.now() + 5000
  while (seen.size < total - failed && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  for (const socket of sockets) socket.terminate()
  latencies.sort((a, b) => a - b)
  const lost = total - failed - seen.size
  return {
    name: 'ws-fanout',
    rps: total / seconds,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors: failed,
    non2xx: failed,
    notes: `${fixture.socketUsers.length} sockets; ${total} changes; delivered ${seen.size}; lost ${lost}; duplicates ${duplicates}; latency = status change sent → notification received`,
  }
}

export const scenarios: Record<string, Scenario> = {
  ceiling: {
    cached: true,
    run: async (target, _fixture, options) => {
      await cannon('warm-up', warmup(options), { url: target.ceiling })
      return [await cannon('ceiling', options, { url: target.ceiling }, 'bare Fastify route, same bytes as list page 1')]
    },
  },
  'list-cached': {
    cached: true,
    run: async (target, _fixture, options) => {
      const url = `${target.base}/api/v1/products`
      await cannon('warm-up', warmup(options), { url })
      return [await cannon('list-cached', options, { url })]
    },
  },
  'list-filtered-cached': {
    cached: true,
    run: async (target, fixture, options) => {
      await warm(target.base, fixture.filters)
      return [await cannon('list-filtered-cached', options, { url: target.base, requests: rotating(fixture.filters) }, '200 filter combinations')]
    },
  },
  detail: {
    cached: true,
    run: async (target, fixture, options) => {
      const paths = fixture.sampleIds.map((id) => `/api/v1/products/${id}`)
      await warm(target.base, paths)
      return [await cannon('detail', options, { url: target.base, requests: rotating(paths) }, `${paths.length} random ids`)]
    },
  },
  login: {
    cached: true,
    run: async (target, fixture, options) => {
      const bodies = fixture.loginEmails.map((email) => JSON.stringify({ email, password: BENCH_PASSWORD }))
      let i = 0
      const requests: Request[] = [
        {
          method: 'POST',
          path: '/api/v1/auth/token',
          headers: { 'content-type': 'application/json' },
          setupRequest: (request) => ({ ...request, body: bodies[i++ % bodies.length]! }),
        },
      ]
      const rate = await argonRate()
      return [await cannon('login', options, { url: target.base, requests }, `argon2id (19 MiB, t=2) ${rate.toFixed(0)} hashes/s on one core`)]
    },
  },
  order: {
    cached: true,
    run: async (target, fixture, options) => {
      const buyers = orderLoad(target, fixture, options)
      const result = await buyers.run
      result.notes = `${buyers.summary()}; req/s counts add-to-cart + place${result.notes ? `; ${result.notes}` : ''}`
      return [result]
    },
  },
  mixed: {
    cached: true,
    run: async (target, fixture, options) => {
      // The catalogue cache under order traffic: orders at full speed alongside the 200 cached filter combinations.
      // Enough stock that every order of the run changes stock (a sold-out shop would flatter the cache).
      const topUp = 100_000
      for (const id of fixture.orderProductIds) {
        const res = await fetch(`${target.base}/api/v1/products/${id}/stock`, {
          method: 'POST',
          headers: { authorization: `Bearer ${fixture.staffToken}`, 'content-type': 'application/json' },
          body: JSON.stringify({ delta: topUp }),
        })
        if (!res.ok) throw new Error(`stock top-up failed: ${res.status} ${await res.text()}`)
        fixture.initialUnits += topUp
      }
      await warm(target.base, fixture.filters)
      let hits = 0
      let misses = 0
      const lists = rotating(fixture.filters)
      lists[0]!.onResponse = (_status, _body, _context, headers) => {
        if (headers['x-cache'] === 'HIT') hits++
        else misses++
      }
      const buyers = orderLoad(target, fixture, options)
      const [listed, ordered] = await Promise.all([cannon('mixed: lists', options, { url: target.base, requests: lists }), buyers.run])
      listed.notes = `cache hit rate ${((100 * hits) / Math.max(1, hits + misses)).toFixed(1)}% while orders run`
      ordered.name = 'mixed: orders'
      ordered.notes = buyers.summary()
      return [listed, ordered]
    },
  },
  'ws-fanout': {
    cached: true,
    run: async (target, fixture, options) => [await wsFanout(target, fixture, options)],
  },
  'list-uncached': {
    cached: false,
    run: async (target, fixture, options) => {
      const deepPage = Math.max(1, Math.floor(fixture.productCount / 10 / 2))
      // The same depth by keyset: a cursor positioned half-way through the catalogue by price.
      const deepCursor = encodeCursor('price', { value: fixture.medianPrice, id: 0, backward: false })
      return [
        await cannon('list-uncached', options, { url: target.base, requests: rotating(fixture.filters) }, '200 filter combinations, cache off'),
        await cannon('list-uncached-deep-offset', options, { url: `${target.base}/api/v1/products?page=${deepPage}` }, `?page=${deepPage} (OFFSET)`),
        await cannon(
          'list-uncached-deep-cursor',
          options,
          { url: `${target.base}/api/v1/products?ordering=price&cursor=${deepCursor}` },
          `?ordering=price&cursor=… at the median price (${fixture.medianPrice})`,
        ),
        await cannon('list-uncached-search', options, { url: `${target.base}/api/v1/products?search=${encodeURIComponent(fixture.searchTerm)}` }, `?search=${fixture.searchTerm}`),
      ]
    },
  },
}

export const scenarioNames = Object.keys(scenarios)
