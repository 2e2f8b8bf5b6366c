import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { cartItems } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'
import { addToCart, makeProduct, stockOf } from './orders-fixtures.js'

/**
 * Placing an order is one database round trip when this instance answered the cart last, and stays right (every
 * line sold, no stale cached list) when the cart or a stock changed where this instance could not see it.
 */
let t: TestApp
let uncached: TestApp
beforeAll(async () => {
  t = await createTestApp()
  uncached = await createTestApp({ config: { cacheTtlSeconds: 0 } })
})
afterAll(async () => {
  await Promise.all([t?.close(), uncached?.close()])
})

const place = (app: TestApp, user: TestUser) => app.request('POST', '/api/v1/orders', { token: user.access, body: {} })

async function inStockIds(productId: number, categoryId: number): Promise<{ cache: unknown; ids: number[] }> {
  const res = await t.request('GET', `/api/v1/products?category=${categoryId}&in_stock=true`)
  expect(res.statusCode).toBe(200)
  const ids = (res.json().results as { id: number }[]).map((p) => p.id).filter((id) => id === productId)
  return { cache: res.headers['x-cache'], ids }
}

async function categoryOf(productId: number): Promise<number> {
  const res = await t.request('GET', `/api/v1/products/${productId}`)
  return res.json().category.id
}

describe('placing an order', () => {
  it('sends one statement for a cart this instance answered, whatever its size (the cache refill aside)', async () => {
    const statementsFor = async (lines: number) => {
      const user = await uncached.user()
      for (let i = 0; i < lines; i++) await addToCart(uncached, user, (await makeProduct(uncached, { stock: 5 })).id, 2)
      uncached.queries.length = 0
      const res = await place(uncached, user)
      expect(res.statusCode, res.body).toBe(201)
      expect(res.json().items).toHaveLength(lines)
      return uncached.queries.length
    }
    expect(await statementsFor(1)).toBe(1)
    expect(await statementsFor(5)).toBe(1)
  })

  it('sells every line of a cart changed behind its back, and the lines that sell out leave the in_stock lists', async () => {
    const user = await t.user()
    const seen = await makeProduct(t, { stock: 5 })
    const unseen = await makeProduct(t, { stock: 2 })
    await addToCart(t, user, seen.id, 1)
    // Another instance adds to the cart: this one's last answer lacks the line.
    await t.ctx.db.insert(cartItems).values({ userId: user.id, productId: unseen.id, quantity: 2 })
    const category = await categoryOf(unseen.id)
    await inStockIds(unseen.id, category)
    expect(await inStockIds(unseen.id, category)).toEqual({ cache: 'HIT', ids: [unseen.id] })

    const res = await place(t, user)
    expect(res.statusCode, res.body).toBe(201)
    expect(res.json().items.map((i: { product_id: number }) => i.product_id).sort()).toEqual([seen.id, unseen.id].sort())
    expect([await stockOf(t, seen.id), await stockOf(t, unseen.id)]).toEqual([4, 0])
    expect((await inStockIds(unseen.id, category)).ids).toEqual([])
  })

  it('takes a product it did not expect to sell out off the in_stock lists when another order took units meanwhile', async () => {
    const [user, other] = [await t.user(), await t.user()]
    const product = await makeProduct(t, { stock: 2 })
    await addToCart(t, user, product.id, 1)
    await addToCart(t, other, product.id, 1)
    expect((await place(t, other)).statusCode).toBe(201)
    // This instance last saw the user's cart with 2 units in stock; 1 is left, which the user's order takes.
    const category = await categoryOf(product.id)
    await inStockIds(product.id, category)
    expect(await inStockIds(product.id, category)).toEqual({ cache: 'HIT', ids: [product.id] })

    expect((await place(t, user)).statusCode).toBe(201)
    expect(await stockOf(t, product.id)).toBe(0)
    expect((await inStockIds(product.id, category)).ids).toEqual([])
  })
})
