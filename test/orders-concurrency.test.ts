import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eq, inArray, sum } from 'drizzle-orm'
import { cartItems, orderItems, orders } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp, realBackend } from './helpers.js'
import { addToCart, makeProduct, stockOf } from './orders-fixtures.js'

// Real parallelism needs a real server: PGlite runs one transaction at a time.
let t: TestApp
beforeAll(async () => {
  if (realBackend) t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

const place = (user: TestUser) => t.request('POST', '/api/v1/orders', { token: user.access, body: {} })

async function users(n: number): Promise<TestUser[]> {
  const list: TestUser[] = []
  // Registration hashes passwords: a few at a time keeps two cores responsive.
  for (let i = 0; i < n; i += 10) list.push(...(await Promise.all(Array.from({ length: Math.min(10, n - i) }, () => t.user()))))
  return list
}

describe('concurrent orders', () => {
  it.runIf(realBackend)('sells exactly the stock when 50 carts race for 10 units', async () => {
    const product = await makeProduct(t, { stock: 10, price: '5.00' })
    const buyers = await users(50)
    for (const buyer of buyers) await addToCart(t, buyer, product.id, 1)

    const answers = await Promise.all(buyers.map(place))
    const codes = answers.map((r) => r.statusCode)
    expect(codes.filter((c) => c === 201)).toHaveLength(10)
    expect(codes.filter((c) => c === 409)).toHaveLength(40)
    for (const res of answers.filter((r) => r.statusCode === 409)) {
      expect(res.json()).toEqual({ detail: 'Not enough stock.', items: [{ product_id: product.id, requested: 1, available: 0 }] })
    }

    expect(await stockOf(t, product.id)).toBe(0)
    const [sold] = await t.ctx.db.select({ units: sum(orderItems.quantity) }).from(orderItems).where(eq(orderItems.productId, product.id))
    expect(Number(sold!.units)).toBe(10)
    const winners = answers.filter((r) => r.statusCode === 201).map((r) => r.json().user_id as number)
    expect(new Set(winners).size).toBe(10)
    // Winners' carts are empty; losers keep theirs.
    const carts = await t.ctx.db
      .select({ userId: cartItems.userId })
      .from(cartItems)
      .where(inArray(cartItems.userId, buyers.map((b) => b.id)))
    expect(carts).toHaveLength(40)
    expect(carts.some((c) => winners.includes(c.userId))).toBe(false)
  })

  it.runIf(realBackend)('places orders over overlapping products filled in opposite orders without deadlock', async () => {
    const catalogue = await Promise.all(Array.from({ length: 4 }, () => makeProduct(t, { stock: 30, price: '1.00' })))
    const buyers = await users(24)
    for (const [i, buyer] of buyers.entries()) {
      // Every cart holds three of the four products, half of them added in reverse order.
      const picks = catalogue.filter((_, j) => j !== i % 4)
      for (const p of i % 2 ? picks.reverse() : picks) await addToCart(t, buyer, p.id, 2)
    }

    const answers = await Promise.all(buyers.map(place))
    const codes = answers.map((r) => r.statusCode)
    expect(codes.every((c) => c === 201 || c === 409)).toBe(true)
    expect(codes.filter((c) => c === 201).length).toBeGreaterThan(0)

    // Every unit that left the stock is in exactly one order.
    for (const p of catalogue) {
      const [sold] = await t.ctx.db.select({ units: sum(orderItems.quantity) }).from(orderItems).where(eq(orderItems.productId, p.id))
      const stock = await stockOf(t, p.id)
      expect(stock).toBeGreaterThanOrEqual(0)
      expect(Number(sold?.units ?? 0) + stock).toBe(30)
    }
    const placed = await t.ctx.db
      .select({ id: orders.id })
      .from(orders)
      .where(inArray(orders.userId, buyers.map((b) => b.id)))
    expect(placed).toHaveLength(codes.filter((c) => c === 201).length)
  })

  it.runIf(realBackend)('keeps stock exact when orders and cancellations interleave', async () => {
    const product = await makeProduct(t, { stock: 20 })
    const buyers = await users(20)
    for (const buyer of buyers) await addToCart(t, buyer, product.id, 1)
    const first = await Promise.all(buyers.slice(0, 10).map(place))
    expect(first.every((r) => r.statusCode === 201)).toBe(true)
    await Promise.all([
      ...first.map((r, i) => t.request('POST', `/api/v1/orders/${r.json().id}/cancel`, { token: buyers[i]!.access })),
      ...buyers.slice(10).map(place),
    ])
    expect(await stockOf(t, product.id)).toBe(10)
  })
})
