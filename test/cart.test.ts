import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eq } from 'drizzle-orm'
import { cartItems, products } from '../src/db/schema.js'
import { type TestApp, createTestApp } from './helpers.js'
import { addToCart, makeProduct } from './orders-fixtures.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

describe('cart', () => {
  it('requires authentication, before looking at the body', async () => {
    expect((await t.request('GET', '/api/v1/cart')).statusCode).toBe(401)
    const res = await t.request('POST', '/api/v1/cart/items', { body: { product_id: 'x' } })
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual({ detail: 'Authentication credentials were not provided.' })
  })

  it('starts empty', async () => {
    const user = await t.user()
    const res = await t.request('GET', '/api/v1/cart', { token: user.access })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toEqual({ items: [], item_count: 0, total: '0.00' })
  })

  it('adds a product with quantity 1 by default and answers 201 with the whole cart', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { price: '19.99', stock: 5 })
    const res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: product.id } })
    expect(res.statusCode).toBe(201)
    const body = res.json()
    expect(body).toEqual({
      items: [
        {
          id: expect.any(Number),
          product: { id: product.id, name: product.name, price: '19.99', stock: 5, in_stock: true },
          quantity: 1,
          subtotal: '19.99',
        },
      ],
      item_count: 1,
      total: '19.99',
    })
    expect((await t.request('GET', '/api/v1/cart/', { token: user.access })).json()).toEqual(body)
  })

  it('adds to the quantity of a product already in the cart (one line per product)', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { price: '0.10', stock: 10 })
    await addToCart(t, user, product.id, 2)
    const body = await addToCart(t, user, product.id, 3)
    expect(body.items).toHaveLength(1)
    expect(body.items[0]).toMatchObject({ quantity: 5, subtotal: '0.50' })
    expect(body).toMatchObject({ item_count: 5, total: '0.50' })
  })

  it('computes money exactly (no float drift) across lines', async () => {
    const user = await t.user()
    const a = await makeProduct(t, { price: '0.10', stock: 100 })
    const b = await makeProduct(t, { price: '0.20', stock: 100 })
    const c = await makeProduct(t, { price: '33333333.33', stock: 100 })
    await addToCart(t, user, a.id, 3)
    await addToCart(t, user, b.id, 1)
    const body = await addToCart(t, user, c.id, 3)
    expect(body.items.map((i: { subtotal: string }) => i.subtotal)).toEqual(['0.30', '0.20', '99999999.99'])
    expect(body).toMatchObject({ item_count: 7, total: '100000000.49' })
  })

  it('refuses more than the stock, also when adding to an existing line, and changes nothing', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 3 })
    let res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: product.id, quantity: 4 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['Only 3 left in stock.'] })
    await addToCart(t, user, product.id, 2)
    res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: product.id, quantity: 2 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['Only 3 left in stock.'] })
    const rows = await t.ctx.db.select().from(cartItems).where(eq(cartItems.userId, user.id))
    expect(rows.map((r) => r.quantity)).toEqual([2])
  })

  it('refuses an unknown or retired product', async () => {
    const user = await t.user()
    const retired = await makeProduct(t, { isActive: false })
    for (const id of [99_999_999, retired.id, 0, 2 ** 40]) {
      const res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: id } })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({ product_id: [`Invalid pk "${id}" - object does not exist.`] })
    }
  })

  it('validates the body in DRF shape', async () => {
    const user = await t.user()
    const product = await makeProduct(t)
    let res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: product.id, quantity: 0 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['Ensure this value is greater than or equal to 1.'] })
    res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { quantity: '2' } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ product_id: ['This field is required.'], quantity: ['A valid integer is required.'] })
    res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: product.id, quantity: 1.5 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['A valid integer is required.'] })
  })

  it('changes a line quantity with the same stock check', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { price: '2.50', stock: 4 })
    const added = await addToCart(t, user, product.id, 1)
    const itemId = added.items[0].id
    let res = await t.request('PATCH', `/api/v1/cart/items/${itemId}`, { token: user.access, body: { quantity: 4 } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ items: [{ id: itemId, quantity: 4, subtotal: '10.00' }], item_count: 4, total: '10.00' })
    res = await t.request('PATCH', `/api/v1/cart/items/${itemId}`, { token: user.access, body: { quantity: 5 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['Only 4 left in stock.'] })
    res = await t.request('PATCH', `/api/v1/cart/items/${itemId}`, { token: user.access, body: { quantity: 0 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['Ensure this value is greater than or equal to 1.'] })
    res = await t.request('PATCH', `/api/v1/cart/items/${itemId}`, { token: user.access, body: {} })
    expect(res.json()).toEqual({ quantity: ['This field is required.'] })
  })

  it('shows a product retired after it was added as out of stock and refuses more of it', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 4 })
    const itemId = (await addToCart(t, user, product.id, 1)).items[0].id
    await t.ctx.db.update(products).set({ isActive: false }).where(eq(products.id, product.id))
    const cart = (await t.request('GET', '/api/v1/cart', { token: user.access })).json()
    expect(cart.items[0].product).toMatchObject({ id: product.id, in_stock: false })
    const res = await t.request('PATCH', `/api/v1/cart/items/${itemId}`, { token: user.access, body: { quantity: 2 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ quantity: ['This product is no longer available.'] })
  })

  it('removes a line and answers with the cart', async () => {
    const user = await t.user()
    const a = await makeProduct(t, { price: '1.00' })
    const b = await makeProduct(t, { price: '2.00' })
    await addToCart(t, user, a.id, 1)
    const cart = await addToCart(t, user, b.id, 2)
    const res = await t.request('DELETE', `/api/v1/cart/items/${cart.items[0].id}`, { token: user.access })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ items: [{ product: { id: b.id } }], item_count: 2, total: '4.00' })
    expect((await t.request('DELETE', `/api/v1/cart/items/${cart.items[0].id}`, { token: user.access })).statusCode).toBe(404)
  })

  it("answers 404 for someone else's line, and leaves it alone", async () => {
    const owner = await t.user()
    const other = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    const itemId = (await addToCart(t, owner, product.id, 1)).items[0].id
    for (const [method, body] of [['PATCH', { quantity: 2 }], ['DELETE', undefined]] as const) {
      const res = await t.request(method, `/api/v1/cart/items/${itemId}`, { token: other.access, body })
      expect(res.statusCode).toBe(404)
      expect(res.json()).toEqual({ detail: 'Not found.' })
    }
    expect((await t.request('PATCH', '/api/v1/cart/items/abc', { token: other.access, body: { quantity: 1 } })).statusCode).toBe(404)
    expect((await t.request('DELETE', `/api/v1/cart/items/${2 ** 40}`, { token: other.access })).statusCode).toBe(404)
    const owned = (await t.request('GET', '/api/v1/cart', { token: owner.access })).json()
    expect(owned.items).toMatchObject([{ id: itemId, quantity: 1 }])
  })

  it('empties the cart with 204', async () => {
    const user = await t.user()
    const other = await t.user()
    const product = await makeProduct(t)
    await addToCart(t, user, product.id, 2)
    await addToCart(t, other, product.id, 1)
    const res = await t.request('DELETE', '/api/v1/cart', { token: user.access })
    expect(res.statusCode).toBe(204)
    expect(res.body).toBe('')
    expect((await t.request('GET', '/api/v1/cart', { token: user.access })).json()).toEqual({ items: [], item_count: 0, total: '0.00' })
    expect((await t.request('GET', '/api/v1/cart', { token: other.access })).json().item_count).toBe(1)
  })

  it('reads the cart in a constant number of queries', async () => {
    const user = await t.user()
    const count = async () => {
      t.queries.length = 0
      const res = await t.request('GET', '/api/v1/cart', { token: user.access })
      expect(res.statusCode).toBe(200)
      return t.queries.length
    }
    await addToCart(t, user, (await makeProduct(t)).id)
    const one = await count()
    for (let i = 0; i < 9; i++) await addToCart(t, user, (await makeProduct(t)).id)
    expect(await count()).toBe(one)
    expect(one).toBeLessThanOrEqual(2)
  })

  it('adds in one statement, answering the cart exactly as it reads back, also when adding to an existing line', async () => {
    const user = await t.user()
    const first = await makeProduct(t, { price: '3.10', stock: 10 })
    const second = await makeProduct(t, { price: '0.20', stock: 10 })
    await addToCart(t, user, first.id, 2)
    await addToCart(t, user, second.id, 1)
    t.queries.length = 0
    const res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: first.id, quantity: 3 } })
    expect(res.statusCode).toBe(201)
    expect(t.queries).toHaveLength(1)
    expect(res.json()).toMatchObject({ item_count: 6, total: '15.70' })
    expect(res.json().items.map((i: { product: { id: number }; quantity: number }) => [i.product.id, i.quantity])).toEqual([
      [first.id, 5],
      [second.id, 1],
    ])
    expect((await t.request('GET', '/api/v1/cart', { token: user.access })).json()).toEqual(res.json())
  })
})
