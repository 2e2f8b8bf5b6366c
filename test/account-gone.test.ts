/** An account deleted from the database: its still-valid access token is refused as soon as a request finds out. */
import { eq } from 'drizzle-orm'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { users } from '../src/db/schema.js'
import { type TestApp, createTestApp } from './helpers.js'
import { makeProduct } from './orders-fixtures.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

const TOKEN_NOT_VALID = { detail: 'User not found', code: 'token_not_valid' }
const deleteUser = (id: number) => t.ctx.db.delete(users).where(eq(users.id, id))

describe('a deleted account', () => {
  it('is refused from the request that reads it on, at once, on every route', async () => {
    const u = await t.user()
    // The session is mirrored: until someone notices, its access token passes the guard without a query.
    expect((await t.request('GET', '/api/v1/cart', { token: u.access })).statusCode).toBe(200)
    await deleteUser(u.id)

    const me = await t.request('GET', '/api/v1/me', { token: u.access })
    expect({ status: me.statusCode, body: me.json() }).toEqual({ status: 401, body: TOKEN_NOT_VALID })
    for (const [method, url] of [['GET', '/api/v1/cart'], ['GET', '/api/v1/orders'], ['GET', '/api/v1/me'], ['GET', '/api/v1/notifications']] as const) {
      const res = await t.request(method, url, { token: u.access })
      expect({ url, status: res.statusCode, code: res.json().code }).toEqual({ url, status: 401, code: 'token_not_valid' })
    }
  })

  it('adding to its cart is 401, not a 500, and so is everything after', async () => {
    const product = await makeProduct(t, { stock: 5 })
    const u = await t.user()
    expect((await t.request('GET', '/api/v1/cart', { token: u.access })).statusCode).toBe(200)
    await deleteUser(u.id)

    const add = await t.request('POST', '/api/v1/cart/items', { token: u.access, body: { product_id: product.id, quantity: 1 } })
    expect({ status: add.statusCode, body: add.json() }).toEqual({ status: 401, body: TOKEN_NOT_VALID })
    expect((await t.request('GET', '/api/v1/cart', { token: u.access })).statusCode).toBe(401)
    expect((await t.request('POST', '/api/v1/orders', { token: u.access, body: {} })).statusCode).toBe(401)
  })
})
