/** What an operator reads and sets: the process's own metrics, /metrics behind a token, the HTTP server's timeouts. */
import { afterAll, describe, expect, it, vi } from 'vitest'
import { type TestApp, createTestApp } from './helpers.js'

const apps: TestApp[] = []
// Kept reachable only so the allocation that provokes a collection is not optimised away.
const garbage: unknown[] = []
afterAll(async () => {
  for (const t of apps) await t.close()
})

describe('/metrics', () => {
  it('includes the process metrics: memory, heap, event-loop lag, GC', async () => {
    const t = await createTestApp()
    apps.push(t)
    // The GC histogram has no samples until a collection has run, which a short test may not have caused yet.
    let text = ''
    await vi.waitFor(
      async () => {
        garbage[0] = Array.from({ length: 100_000 }, (_, i) => ({ i }))
        text = (await t.request('GET', '/metrics')).body
        expect(text).toMatch(/^nodejs_gc_duration_seconds_count/m)
      },
      { timeout: 10_000, interval: 20 },
    )
    for (const name of ['process_resident_memory_bytes', 'nodejs_heap_size_used_bytes', 'nodejs_eventloop_lag_seconds']) {
      expect(text).toMatch(new RegExp(`^${name}`, 'm'))
    }
  })

  it('wants the bearer token when METRICS_TOKEN is set', async () => {
    const token = 'scrape-me-0123456789'
    const t = await createTestApp({ config: { metricsToken: token } })
    apps.push(t)
    const anonymous = await t.request('GET', '/metrics')
    expect(anonymous.statusCode).toBe(401)
    expect(anonymous.json()).toEqual({ detail: 'Authentication credentials were not provided.' })
    expect((await t.request('GET', '/metrics', { token: `${token}x` })).statusCode).toBe(401)
    const scraped = await t.request('GET', '/metrics', { token })
    expect(scraped.statusCode).toBe(200)
    expect(scraped.body).toMatch(/^http_requests_total/m)
  })
})

describe('HTTP server timeouts', () => {
  it('are the configured ones', async () => {
    const t = await createTestApp({ config: { timeouts: { request: 12_000, keepAlive: 61_000, connection: 90_000 } }, listen: true })
    apps.push(t)
    expect(t.app.server.requestTimeout).toBe(12_000)
    expect(t.app.server.keepAliveTimeout).toBe(61_000)
    expect(t.app.server.timeout).toBe(90_000)
  })
})
