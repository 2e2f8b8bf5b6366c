import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, expect, it } from 'vitest'
import { API_TYPES_FILE, apiTypes } from '../scripts/admin-types.js'
import { type TestApp, createTestApp } from './helpers.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

it('types the staff console with what the live /openapi.json generates (npm run admin:types when this fails)', async () => {
  const document = (await t.request('GET', '/openapi.json')).json()
  const generated = await apiTypes(document)
  expect(readFileSync(API_TYPES_FILE, 'utf8'), 'admin/src/api/schema.d.ts is stale: run `npm run admin:types`').toBe(generated)
})
