import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, createTestApp } from './helpers.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ config: { bodyLimit: 2048 } })
})
afterAll(async () => {
  await t?.close()
})

describe('cross-cutting HTTP behaviour', () => {
  it('answers an unknown route 404 in DRF shape', async () => {
    const res = await t.request('GET', '/api/v1/nothing-here')
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ detail: 'Not found.' })
  })

  it('answers a known path with the wrong method 405 with Allow', async () => {
    const res = await t.request('DELETE', '/api/v1/auth/register')
    expect(res.statusCode).toBe(405)
    expect(res.json()).toEqual({ detail: 'Method "DELETE" not allowed.' })
    expect(res.headers.allow).toBe('POST')
  })

  it('answers malformed JSON 400, a body too large 413, a wrong content type 415', async () => {
    const malformed = await t.request('POST', '/api/v1/auth/token', { body: undefined, headers: { 'content-type': 'application/json' } })
    expect(malformed.statusCode).toBe(400)
    const broken = await t.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'content-type': 'application/json' }, payload: '{"email": ' })
    expect(broken.statusCode).toBe(400)
    expect(broken.json()).toEqual({ detail: 'JSON parse error.' })
    const large = await t.request('POST', '/api/v1/auth/token', { body: { email: 'x'.repeat(5000), password: 'y' } })
    expect(large.statusCode).toBe(413)
    expect(large.json()).toEqual({ detail: 'Request body is too large.' })
    const text = await t.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'content-type': 'text/plain' }, payload: 'hello' })
    expect(text.statusCode).toBe(415)
    expect(text.json().detail).toMatch(/Unsupported media type/)
  })

  it('accepts a trailing slash and echoes a request id', async () => {
    const res = await t.request('GET', '/health/live/', { headers: { 'x-request-id': 'abc-123' } })
    expect(res.statusCode).toBe(200)
    expect(res.headers['x-request-id']).toBe('abc-123')
    expect((await t.request('GET', '/health/live')).headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/)
  })

  it('reports readiness of the database, cache and pub/sub', async () => {
    const res = await t.request('GET', '/health/ready')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ status: 'ok', checks: { database: 'ok', cache: 'ok', pubsub: 'ok' } })
  })

  it('serves the OpenAPI document, the docs page and metrics', async () => {
    const doc = (await t.request('GET', '/openapi.json')).json()
    expect(doc.openapi).toMatch(/^3\./)
    expect(Object.keys(doc.paths)).toEqual(expect.arrayContaining(['/api/v1/auth/register', '/api/v1/me']))
    const docs = await t.request('GET', '/docs/')
    expect(docs.statusCode).toBe(200)
    expect(docs.body).toMatch(/swagger/i)
    const metrics = await t.request('GET', '/metrics')
    expect(metrics.statusCode).toBe(200)
    expect(metrics.body).toMatch(/http_requests_total\{method="GET",route="\/health\/live",status="200"\}/)
  })
})
