import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { categories, emptyAddress, orders, products } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'
import { addToCart, makeProduct } from './orders-fixtures.js'

let t: TestApp
let staff: TestUser
let customer: TestUser
beforeAll(async () => {
  t = await createTestApp()
  staff = await t.user({ staff: true })
  customer = await t.user()
})
afterAll(async () => {
  await t?.close()
})

const DAY = 86_400_000
const cents = (money: string) => Math.round(Number(money) * 100)
const money = (c: number) => (c / 100).toFixed(2)

describe('staff only', () => {
  it.each(['/api/v1/stats/orders', '/api/v1/stats/stock'])('%s: 401 anonymous, 403 customer', async (url) => {
    const anonymous = await t.request('GET', url)
    expect(anonymous.statusCode).toBe(401)
    expect(anonymous.json()).toEqual({ detail: 'Authentication credentials were not provided.' })
    const forbidden = await t.request('GET', url, { token: customer.access })
    expect(forbidden.statusCode).toBe(403)
    expect(forbidden.json()).toEqual({ detail: 'You do not have permission to perform this action.' })
  })
})

describe('GET /stats/orders', () => {
  it('counts the orders placed since the moment by their status now, with their revenue, and every pending order', async () => {
    const windowStart = new Date(Date.now() - 60_000).toISOString()
    // Before the window: a pending order from three days ago still waits to ship, but was not placed "since".
    const [old] = await t.ctx.db
      .insert(orders)
      .values({ userId: customer.id, totalPrice: '99.00', shippingAddress: emptyAddress, createdAt: new Date(Date.now() - 3 * DAY) })
      .returning()
    expect(old!.status).toBe('pending')

    const placed: Array<{ id: number; total: string }> = []
    for (const [price, quantity] of [['10.00', 1], ['4.25', 2], ['19.99', 1], ['7.50', 3]] as const) {
      const product = await makeProduct(t, { price })
      await addToCart(t, customer, product.id, quantity)
      const res = await t.request('POST', '/api/v1/orders', { token: customer.access, body: {} })
      expect(res.statusCode).toBe(201)
      placed.push({ id: res.json().id, total: res.json().total_price })
    }
    const move = async (id: number, status: string) =>
      expect((await t.request('PATCH', `/api/v1/orders/${id}/status`, { token: staff.access, body: { status } })).statusCode).toBe(200)
    await move(placed[0]!.id, 'shipped')
    await move(placed[1]!.id, 'shipped')
    await move(placed[1]!.id, 'delivered')
    await move(placed[2]!.id, 'cancelled')

    const res = await t.request('GET', `/api/v1/stats/orders?since=${encodeURIComponent(windowStart)}`, { token: staff.access })
    expect(res.statusCode).toBe(200)
    const notCancelled = [placed[0]!, placed[1]!, placed[3]!]
    expect(res.json()).toEqual({
      since: windowStart,
      placed: 4,
      revenue: money(notCancelled.reduce((sum, o) => sum + cents(o.total), 0)),
      by_status: { pending: 1, shipped: 1, delivered: 1, cancelled: 1 },
      awaiting_shipment: 2,
    })
    // The totals the API answered with are what was bought: 10.00 + 8.50 + 22.50.
    expect(res.json().revenue).toBe('41.00')

    // A window that opens before the old order holds it too; one that opens later holds nothing.
    const wider = await t.request('GET', `/api/v1/stats/orders?since=${new Date(Date.now() - 4 * DAY).toISOString()}`, { token: staff.access })
    expect(wider.json()).toMatchObject({ placed: 5, revenue: '140.00', by_status: { pending: 2 } })
    const later = await t.request('GET', `/api/v1/stats/orders?since=${new Date(Date.now() + DAY).toISOString()}`, { token: staff.access })
    expect(later.json()).toMatchObject({ placed: 0, revenue: '0.00', awaiting_shipment: 2 })
  })

  it('defaults to the start of today (UTC) and takes any time zone', async () => {
    const today = new Date(Math.floor(Date.now() / DAY) * DAY).toISOString()
    const plain = await t.request('GET', '/api/v1/stats/orders', { token: staff.access })
    expect(plain.json().since).toBe(today)
    const midnightInParis = `${today.slice(0, 10)}T00:00:00+02:00`
    const zoned = await t.request('GET', `/api/v1/stats/orders?since=${encodeURIComponent(midnightInParis)}`, { token: staff.access })
    expect(zoned.statusCode).toBe(200)
    expect(zoned.json().since).toBe(new Date(Date.parse(today) - 2 * 3_600_000).toISOString())
  })

  it('refuses a bad or too distant `since` with a field error', async () => {
    for (const [since, message] of [
      ['yesterday', 'Enter a valid date-time.'],
      ['2026-01-01', 'Enter a valid date-time.'],
      ['2016-12-31T23:59:60Z', 'Enter a valid date-time.'],
      [new Date(Date.now() - 32 * DAY).toISOString(), 'Ensure this value is within the last 31 days.'],
    ]) {
      const res = await t.request('GET', `/api/v1/stats/orders?since=${encodeURIComponent(since!)}`, { token: staff.access })
      expect(res.statusCode, since).toBe(400)
      expect(res.json()).toEqual({ since: [message] })
    }
  })
})

describe('GET /stats/stock', () => {
  it('counts sold-out and low-stock live products and lists the lowest first', async () => {
    const [category] = await t.ctx.db.insert(categories).values({ name: 'stock-report' }).returning()
    const make = async (stock: number, isActive = true) => {
      const [row] = await t.ctx.db
        .insert(products)
        .values({ name: `p${stock}-${isActive}`, price: '1.00', stock, isActive, categoryId: category!.id })
        .returning()
      return { id: row!.id, stock }
    }
    // Created out of order so that the answer's order cannot be the insertion order.
    const made = [await make(3), await make(0), await make(25), await make(5), await make(1), await make(0), await make(6)]
    await make(0, false) // retired: not the shop's stock any more

    const low = made.filter((p) => p.stock <= 5).sort((x, y) => x.stock - y.stock || x.id - y.id)
    const res = await t.request('GET', '/api/v1/stats/stock', { token: staff.access })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body).toMatchObject({ threshold: 5, sold_out: 2, low_stock: 3 })
    expect(body.products.map((p: { id: number; stock: number }) => [p.id, p.stock])).toEqual(low.map((p) => [p.id, p.stock]))
    expect(body.products[0]).toEqual({
      id: low[0]!.id,
      name: 'p0-true',
      description: '',
      price: '1.00',
      stock: 0,
      in_stock: false,
      category: { id: category!.id, name: 'stock-report' },
      created_at: expect.any(String),
      updated_at: expect.any(String),
    })

    const narrow = await t.request('GET', '/api/v1/stats/stock?threshold=1&limit=2', { token: staff.access })
    expect(narrow.json()).toMatchObject({ threshold: 1, sold_out: 2, low_stock: 1 })
    expect(narrow.json().products.map((p: { id: number }) => p.id)).toEqual(low.slice(0, 2).map((p) => p.id))
    const none = await t.request('GET', '/api/v1/stats/stock?threshold=0', { token: staff.access })
    expect(none.json()).toMatchObject({ threshold: 0, sold_out: 2, low_stock: 0 })
  })

  it('refuses a threshold above what the low-stock index covers, and bad numbers', async () => {
    for (const [query, body] of [
      ['threshold=21', { threshold: ['Ensure this value is less than or equal to 20.'] }],
      ['threshold=-1', { threshold: ['Ensure this value is greater than or equal to 0.'] }],
      ['threshold=a', { threshold: ['Enter a whole number.'] }],
      ['limit=0', { limit: ['Ensure this value is greater than or equal to 1.'] }],
      ['limit=101', { limit: ['Ensure this value is less than or equal to 100.'] }],
    ] as const) {
      const res = await t.request('GET', `/api/v1/stats/stock?${query}`, { token: staff.access })
      expect(res.statusCode, query).toBe(400)
      expect(res.json()).toEqual(body)
    }
  })
})
