/**
 * /openapi.json is what client generators (openapi-typescript, orval) read: it must be valid OpenAPI 3, and every
 * operation needs a unique operationId a generated function can be named by, and a tag to group it under.
 */
import { compileErrors, validate } from '@readme/openapi-parser'
import { Ajv } from 'ajv'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { type TestApp, createTestApp } from './helpers.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

interface Operation {
  operationId?: string
  tags?: string[]
}

const METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'])

async function operations(): Promise<(Operation & { route: string })[]> {
  const document = (await t.request('GET', '/openapi.json')).json() as { paths: Record<string, Record<string, Operation>> }
  return Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method]) => METHODS.has(method))
      .map(([method, operation]) => ({ route: `${method.toUpperCase()} ${path}`, ...operation })),
  )
}

it('serves a valid OpenAPI 3 document', async () => {
  const document = (await t.request('GET', '/openapi.json')).json() as Parameters<typeof validate>[0] & { openapi: string }
  expect(document.openapi).toMatch(/^3\./)
  const result = await validate(document)
  expect(result.valid, result.valid ? '' : compileErrors(result)).toBe(true)
})

it('gives every operation a unique camelCase operationId and a tag', async () => {
  const all = await operations()
  expect(all.length).toBeGreaterThan(40)
  expect(all.filter((o) => !/^[a-z][a-zA-Z0-9]*$/.test(o.operationId ?? '')).map((o) => o.route)).toEqual([])
  expect(all.filter((o) => !o.tags?.length).map((o) => o.route)).toEqual([])
  const seen = new Map<string, string>()
  const twice = all.filter((o) => seen.has(o.operationId!) || !seen.set(o.operationId!, o.route))
  expect(twice.map((o) => `${o.route} reuses ${o.operationId} of ${seen.get(o.operationId!)}`)).toEqual([])
})

it('names the operations as a generated client calls them', async () => {
  const byRoute = new Map((await operations()).map((o) => [o.route, o.operationId]))
  expect(byRoute.get('GET /api/v1/products')).toBe('listProducts')
  expect(byRoute.get('GET /api/v1/products/{id}')).toBe('getProduct')
  expect(byRoute.get('POST /api/v1/products')).toBe('createProduct')
  expect(byRoute.get('POST /api/v1/orders')).toBe('placeOrder')
  expect(byRoute.get('GET /api/v1/me')).toBe('getMe')
  expect(byRoute.get('PATCH /api/v1/me')).toBe('updateMe')
})

it("documents each refused input's answer in the shape it is sent", async () => {
  const document = (await t.request('GET', '/openapi.json')).json() as {
    paths: Record<string, Record<string, { requestBody?: unknown; parameters?: { in: string }[]; responses: Record<string, { content?: Record<string, { schema: object }> }> }>>
  }
  const readsInput = Object.entries(document.paths).flatMap(([path, item]) =>
    Object.entries(item)
      .filter(([method, op]) => METHODS.has(method) && (op.requestBody !== undefined || op.parameters?.some((p) => p.in === 'query')))
      .map(([method, op]) => ({ route: `${method.toUpperCase()} ${path}`, op })),
  )
  expect(readsInput.length).toBeGreaterThan(20)
  expect(readsInput.filter(({ op }) => !op.responses['400']).map(({ route }) => route)).toEqual([])

  // Answers the service really sends: nested field errors, a query parameter's error, a body that is not JSON.
  const staff = await t.user({ staff: true })
  const shopper = await t.user()
  const refused = [
    { route: 'POST /api/v1/products', res: await t.request('POST', '/api/v1/products', { token: staff.access, body: { name: '', price: '-1', stock: 1 } }) },
    { route: 'PATCH /api/v1/me', res: await t.request('PATCH', '/api/v1/me', { token: shopper.access, body: { address: { city: 7 } } }) },
    { route: 'GET /api/v1/products', res: await t.request('GET', '/api/v1/products?min_price=cheap') },
    {
      route: 'POST /api/v1/auth/token',
      res: await t.app.inject({ method: 'POST', url: '/api/v1/auth/token', headers: { 'content-type': 'application/json' }, payload: '{"email":' }),
    },
  ]
  const ajv = new Ajv({ strict: false })
  for (const { route, res } of refused) {
    expect(res.statusCode, route).toBe(400)
    const [method, path] = route.split(' ') as [string, string]
    const schema = document.paths[path]![method.toLowerCase()]!.responses['400']!.content!['application/json']!.schema
    expect(ajv.validate(schema, res.json()), `${route} answered ${res.body}: ${ajv.errorsText()}`).toBe(true)
  }
  // And the schema is not a blank cheque: a body of another shape does not match it.
  const schema = document.paths['/api/v1/products']!.post!.responses['400']!.content!['application/json']!.schema
  expect(ajv.validate(schema, { price: 'not a list' })).toBe(false)
})
