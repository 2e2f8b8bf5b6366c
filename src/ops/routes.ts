import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import { timingSafeEqual } from 'node:crypto'
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client'
import type { FastifyInstance } from 'fastify'
import { notAuthenticated } from '../http/errors.js'
import type { VersionedCache } from '../cache/index.js'
import type { ResponseCache } from '../cache/responses.js'
import type { Database } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'

declare module 'fastify' {
  interface FastifyInstance {
    metrics: Registry
  }
}

const Health = Type.Object({ status: Type.String(), checks: Type.Optional(Type.Record(Type.String(), Type.String())) })

async function check(probe: () => Promise<void>): Promise<string> {
  try {
    await probe()
    return 'ok'
  } catch {
    return 'unavailable'
  }
}

/**
 * Request counts and latencies of every route, by route pattern, and the cache's counters. Installed on the root
 * instance, before the routes: a hook inside an encapsulated plugin would see only that plugin's routes.
 */
export function installRequestMetrics(app: FastifyInstance, cache: VersionedCache, responses: ResponseCache, registry: Registry): void {
  // The process's own: CPU, resident memory, heap by space, event-loop lag, GC pauses, open handles.
  collectDefaultMetrics({ register: registry })
  const requests = new Counter({
    name: 'http_requests_total',
    help: 'HTTP requests by method, route and status',
    labelNames: ['method', 'route', 'status'],
    registers: [registry],
  })
  const latency = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request latency by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  })
  new Gauge({
    name: 'cache_l1_hits_total',
    help: 'Catalogue answers served from this process\'s first level since start (counted in cache_hits_total too)',
    registers: [registry],
    collect() {
      this.set(responses.l1Hits)
    },
  })
  new Gauge({
    name: 'cache_l1_bytes',
    help: 'Bytes held by this process\'s first-level cache (at most CACHE_L1_BYTES)',
    registers: [registry],
    collect() {
      this.set(responses.bytes)
    },
  })
  for (const kind of ['hits', 'misses', 'errors'] as const) {
    new Gauge({
      name: `cache_${kind}_total`,
      help: `Catalogue cache ${kind} since start`,
      registers: [registry],
      collect() {
        this.set(cache.stats[kind])
      },
    })
  }

  // prom-client hashes a label set on every call; the handful of (method, route, status) sets are hashed once.
  const series = new Map<string, { count: ReturnType<typeof requests.labels>; time: ReturnType<typeof latency.labels> }>()
  app.addHook('onResponse', (request, reply, done) => {
    const route = request.routeOptions.url ?? 'unmatched'
    const key = `${request.method} ${reply.statusCode} ${route}`
    let s = series.get(key)
    if (!s) {
      s = {
        count: requests.labels({ method: request.method, route, status: reply.statusCode }),
        time: latency.labels({ method: request.method, route }),
      }
      series.set(key, s)
    }
    s.count.inc()
    s.time.observe(reply.elapsedTime / 1000)
    done()
  })
}

/** Health probes and the Prometheus endpoint. The registry is per app, so several apps in one process never mix counts. */
export const opsRoutes: FastifyPluginAsyncTypebox<{
  ctx: { database: Database; cache: VersionedCache; pubsub: PubSub; config: { metricsToken: string | undefined } }
  registry: Registry
}> = async (app, { ctx, registry }) => {
  app.get('/health/live', { schema: { tags: ['operations'], operationId: 'checkLiveness', response: { 200: Health } } }, async () => ({ status: 'ok' }))

  app.get(
    '/health/ready',
    { schema: { tags: ['operations'], operationId: 'checkReadiness', response: { 200: Health, 503: Health } } },
    async (_request, reply) => {
      const [database, cache, pubsub] = await Promise.all([
        check(() => ctx.database.ping(2_000)),
        check(() => ctx.cache.backend.ping()),
        check(() => ctx.pubsub.ping()),
      ])
      const checks = { database, cache, pubsub }
      const ok = Object.values(checks).every((v) => v === 'ok')
      return reply.code(ok ? 200 : 503).send({ status: ok ? 'ok' : 'unavailable', checks })
    },
  )

  const token = ctx.config.metricsToken
  app.get(
    '/metrics',
    {
      schema: { tags: ['operations'], operationId: 'getMetrics', ...(token ? { security: [{ bearerAuth: [] }] } : {}) },
      // With METRICS_TOKEN set, a scraper shows it as a bearer token; nobody else reads the service's figures.
      onRequest: async (request) => {
        if (token && !sameToken(request.headers.authorization, `Bearer ${token}`)) throw notAuthenticated()
      },
    },
    async (_request, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  )
}

function sameToken(given: string | undefined, expected: string): boolean {
  const a = Buffer.from(given ?? '')
  const b = Buffer.from(expected)
  return a.length === b.length && timingSafeEqual(a, b)
}
