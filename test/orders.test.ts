import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { asc, count, eq, inArray } from 'drizzle-orm'
import { cartItems, notifications, orderItems, orders, orderStatusHistory, products } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp, databaseClockPast } from './helpers.js'
import { addToCart, makeProduct, stockOf } from './orders-fixtures.js'

let t: TestApp
let staff: TestUser
beforeAll(async () => {
  t = await createTestApp()
  staff = await t.user({ staff: true })
})
afterAll(async () => {
  await t?.close()
})

const address = { line1: '1 Main St', line2: 'Flat 2', city: 'Springfield', state: 'IL', postal_code: '62701', country: 'US' }

async function place(user: TestUser, options: { key?: string; body?: unknown } = {}) {
  return t.request('POST', '/api/v1/orders', {
    token: user.access,
    body: options.body ?? {},
    headers: options.key !== undefined ? { 'idempotency-key': options.key } : {},
  })
}

/** A user with one product in the cart, and the order placed from it. */
async function placedOrder(user?: TestUser, quantity = 2) {
  const owner = user ?? (await t.user())
  const product = await makeProduct(t, { price: '12.50', stock: 10 })
  await addToCart(t, owner, product.id, quantity)
  const res = await place(owner)
  expect(res.statusCode).toBe(201)
  return { owner, product, order: res.json() }
}

/** The product's stock as the catalogue answers it (from its cache when warm). */
async function catalogueStock(productId: number): Promise<number> {
  const res = await t.request('GET', `/api/v1/products/${productId}`)
  expect(res.statusCode).toBe(200)
  return res.json().stock
}

/** Warms the catalogue's cached answer for the product: a stale entry would go on showing `stock`. */
async function cachedCatalogueShows(productId: number, stock: number): Promise<void> {
  expect(await catalogueStock(productId)).toBe(stock)
  const again = await t.request('GET', `/api/v1/products/${productId}`)
  expect([again.json().stock, again.headers['x-cache']]).toEqual([stock, 'HIT'])
}

async function ordersOf(userId: number) {
  const [row] = await t.ctx.db.select({ n: count() }).from(orders).where(eq(orders.userId, userId))
  return row!.n
}

async function cartOf(userId: number) {
  return t.ctx.db
    .select({ productId: cartItems.productId, quantity: cartItems.quantity })
    .from(cartItems)
    .where(eq(cartItems.userId, userId))
    .orderBy(asc(cartItems.productId))
}

describe('placing an order', () => {
  it('requires authentication', async () => {
    const res = await t.request('POST', '/api/v1/orders', { body: {} })
    expect(res.statusCode).toBe(401)
  })

  it('refuses an empty cart with 400 non_field_errors', async () => {
    const user = await t.user()
    const res = await place(user)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ non_field_errors: ['Your cart is empty.'] })
    expect(await ordersOf(user.id)).toBe(0)
  })

  it('places the cart: stock decremented, prices snapshotted, cart emptied, pending with history and a notification', async () => {
    const user = await t.user()
    await t.request('PATCH', '/api/v1/me', { token: user.access, body: { address } })
    const a = await makeProduct(t, { price: '19.99', stock: 5, name: 'Teapot' })
    const b = await makeProduct(t, { price: '0.10', stock: 7, name: 'Spoon' })
    await addToCart(t, user, b.id, 3)
    await addToCart(t, user, a.id, 2)

    const res = await place(user)
    expect(res.statusCode).toBe(201)
    const order = res.json()
    expect(order).toEqual({
      id: expect.any(Number),
      user_id: user.id,
      status: 'pending',
      total_price: '40.28',
      items: [
        { product_id: a.id, product_name: 'Teapot', unit_price: '19.99', quantity: 2, subtotal: '39.98' },
        { product_id: b.id, product_name: 'Spoon', unit_price: '0.10', quantity: 3, subtotal: '0.30' },
      ],
      shipping_address: address,
      status_history: [{ status: 'pending', at: order.created_at }],
      created_at: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      updated_at: expect.any(String),
    })
    expect(await stockOf(t, a.id)).toBe(3)
    expect(await stockOf(t, b.id)).toBe(4)
    expect(await cartOf(user.id)).toEqual([])
    const stored = await t.ctx.db.select().from(notifications).where(eq(notifications.orderId, order.id))
    expect(stored).toMatchObject([{ userId: user.id, status: 'pending', previousStatus: null, read: false }])
    expect((await t.request('GET', `/api/v1/orders/${order.id}`, { token: user.access })).json()).toEqual(order)
  })

  it('accepts a request without any body', async () => {
    const user = await t.user()
    await addToCart(t, user, (await makeProduct(t)).id)
    const res = await t.request('POST', '/api/v1/orders', { token: user.access })
    expect(res.statusCode).toBe(201)
  })

  it('ships to the address in the body when given, and validates it', async () => {
    const user = await t.user()
    const product = await makeProduct(t)
    await addToCart(t, user, product.id)
    let res = await place(user, { body: { shipping_address: { line1: '', city: 'Paris' } } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({
      shipping_address: {
        line1: ['This field may not be blank.'],
        postal_code: ['This field is required.'],
        country: ['This field is required.'],
      },
    })
    const given = { line1: '5 Rue de Rivoli', city: 'Paris', postal_code: '75001', country: 'FR' }
    res = await place(user, { body: { shipping_address: given } })
    expect(res.statusCode).toBe(201)
    expect(res.json().shipping_address).toEqual({ ...given, line2: '', state: '' })
  })

  it('keeps the snapshotted price and name after the product changes', async () => {
    const { owner, product, order } = await placedOrder()
    await t.ctx.db.update(products).set({ price: '99.00', name: 'Renamed' }).where(eq(products.id, product.id))
    const res = await t.request('GET', `/api/v1/orders/${order.id}`, { token: owner.access })
    expect(res.json()).toMatchObject({
      total_price: '25.00',
      items: [{ product_id: product.id, product_name: product.name, unit_price: '12.50', quantity: 2, subtotal: '25.00' }],
    })
  })

  it('answers 409 listing every short line, and changes nothing at all', async () => {
    const user = await t.user()
    const plenty = await makeProduct(t, { stock: 10 })
    const few = await makeProduct(t, { stock: 5 })
    const scarce = await makeProduct(t, { stock: 5 })
    const retired = await makeProduct(t, { stock: 5 })
    await addToCart(t, user, plenty.id, 2)
    await addToCart(t, user, few.id, 4)
    await addToCart(t, user, scarce.id, 5)
    await addToCart(t, user, retired.id, 1)
    // Others buy in the meantime; one product is retired.
    await t.ctx.db.update(products).set({ stock: 1 }).where(eq(products.id, few.id))
    await t.ctx.db.update(products).set({ stock: 3 }).where(eq(products.id, scarce.id))
    await t.ctx.db.update(products).set({ isActive: false }).where(eq(products.id, retired.id))
    const cartBefore = await cartOf(user.id)

    const res = await place(user)
    expect(res.statusCode).toBe(409)
    expect(res.json()).toEqual({
      detail: 'Not enough stock.',
      items: [
        { product_id: few.id, requested: 4, available: 1 },
        { product_id: scarce.id, requested: 5, available: 3 },
        { product_id: retired.id, requested: 1, available: 0 },
      ],
    })
    expect(await stockOf(t, plenty.id)).toBe(10)
    expect(await stockOf(t, few.id)).toBe(1)
    expect(await stockOf(t, scarce.id)).toBe(3)
    expect(await cartOf(user.id)).toEqual(cartBefore)
    expect(await ordersOf(user.id)).toBe(0)
  })

  it('refuses a total beyond what the order can hold with 400, not a 500, and changes nothing', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { price: '9999999999.99', stock: 5 })
    await addToCart(t, user, product.id, 2)
    const res = await place(user)
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ non_field_errors: ['The order total is too large.'] })
    expect(await stockOf(t, product.id)).toBe(5)
    expect(await cartOf(user.id)).toHaveLength(1)
  })

  it('makes the catalogue cache of the sold products stale before anyone can read the new stock', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    await cachedCatalogueShows(product.id, 10)
    await addToCart(t, user, product.id, 3)
    expect((await place(user)).statusCode).toBe(201)
    expect(await catalogueStock(product.id)).toBe(7)
  })
})

describe('Idempotency-Key', () => {
  it('returns the first order on a retry (201, same body) and changes nothing', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    await addToCart(t, user, product.id, 2)
    const first = await place(user, { key: 'order-attempt-1' })
    expect(first.statusCode).toBe(201)
    expect(first.headers['idempotent-replayed']).toBeUndefined()
    const retry = await place(user, { key: 'order-attempt-1' })
    expect(retry.statusCode).toBe(201)
    expect(retry.json()).toEqual(first.json())
    expect(retry.headers['idempotent-replayed']).toBe('true')
    expect(await ordersOf(user.id)).toBe(1)
    expect(await stockOf(t, product.id)).toBe(8)
    const stored = await t.ctx.db.select().from(notifications).where(eq(notifications.userId, user.id))
    expect(stored).toHaveLength(1)
  })

  it('also replays when the same cart was filled again', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    await addToCart(t, user, product.id, 2)
    const first = await place(user, { key: 'k' })
    await addToCart(t, user, product.id, 2)
    const retry = await place(user, { key: 'k' })
    expect(retry.statusCode).toBe(201)
    expect(retry.json().id).toBe(first.json().id)
    expect(await cartOf(user.id)).toEqual([{ productId: product.id, quantity: 2 }])
    expect(await stockOf(t, product.id)).toBe(8)
  })

  it('refuses the same key with a different cart or address (409), and places nothing', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    await addToCart(t, user, product.id, 2)
    expect((await place(user, { key: 'reused' })).statusCode).toBe(201)
    await addToCart(t, user, product.id, 3)
    let res = await place(user, { key: 'reused' })
    expect(res.statusCode).toBe(409)
    expect(res.json()).toEqual({ detail: 'This Idempotency-Key was already used for a different order request.' })
    res = await place(user, { key: 'reused', body: { shipping_address: address } })
    expect(res.statusCode).toBe(409)
    expect(await ordersOf(user.id)).toBe(1)
    expect(await stockOf(t, product.id)).toBe(8)
    expect(await cartOf(user.id)).toEqual([{ productId: product.id, quantity: 3 }])
    // A new key places the new cart.
    expect((await place(user, { key: 'fresh' })).statusCode).toBe(201)
  })

  it('keys are per user', async () => {
    const [a, b] = [await t.user(), await t.user()]
    const product = await makeProduct(t, { stock: 10 })
    await addToCart(t, a, product.id, 1)
    await addToCart(t, b, product.id, 1)
    const first = await place(a, { key: 'shared-key' })
    const second = await place(b, { key: 'shared-key' })
    expect(second.statusCode).toBe(201)
    expect(second.json().id).not.toBe(first.json().id)
    expect(second.json().user_id).toBe(b.id)
  })

  it('limits the key to 255 characters', async () => {
    const user = await t.user()
    await addToCart(t, user, (await makeProduct(t)).id)
    const res = await place(user, { key: 'x'.repeat(256) })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ 'Idempotency-Key': ['Ensure this field has no more than 255 characters.'] })
    expect((await place(user, { key: 'x'.repeat(255) })).statusCode).toBe(201)
  })

  it('places one order when retries with one key arrive at the same time', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    await addToCart(t, user, product.id, 2)
    const answers = await Promise.all(Array.from({ length: 8 }, () => place(user, { key: 'simultaneous' })))
    expect(answers.map((r) => r.statusCode)).toEqual(Array(8).fill(201))
    expect(new Set(answers.map((r) => r.json().id)).size).toBe(1)
    expect(await ordersOf(user.id)).toBe(1)
    expect(await stockOf(t, product.id)).toBe(8)
  })

  it('without a key, simultaneous placements of one cart place it once', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 10 })
    await addToCart(t, user, product.id, 2)
    const answers = await Promise.all(Array.from({ length: 5 }, () => place(user)))
    expect(answers.map((r) => r.statusCode).sort()).toEqual([201, 400, 400, 400, 400])
    expect(await stockOf(t, product.id)).toBe(8)
  })
})

describe('reading orders', () => {
  it('lists your own orders, newest first, paginated', async () => {
    const user = await t.user()
    const other = await t.user()
    await placedOrder(other)
    const ids: number[] = []
    for (let i = 0; i < 3; i++) ids.push((await placedOrder(user)).order.id)
    const res = await t.request('GET', '/api/v1/orders?page_size=2', { token: user.access })
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.count).toBe(3)
    expect(body.results.map((o: { id: number }) => o.id)).toEqual([ids[2], ids[1]])
    expect(body.next).toMatch(/^http:\/\/[^/]+\/api\/v1\/orders\?page_size=2&page=2$/)
    expect(body.previous).toBeNull()
    expect(body.results[0]).toMatchObject({ user_id: user.id, items: [{ quantity: 2 }], status_history: [{ status: 'pending' }] })
    const last = (await t.request('GET', body.next, { token: user.access })).json()
    expect(last.results.map((o: { id: number }) => o.id)).toEqual([ids[0]])
    expect((await t.request('GET', '/api/v1/orders?page=3&page_size=2', { token: user.access })).json()).toEqual({
      detail: 'Invalid page.',
    })
    // Someone else's id in ?user= is ignored for a non-staff user.
    const filtered = (await t.request('GET', `/api/v1/orders?user=${other.id}`, { token: user.access })).json()
    expect(filtered.count).toBe(3)
  })

  it('lets staff see everyone and filter by user and status', async () => {
    const a = await placedOrder()
    const b = await placedOrder(a.owner)
    const c = await placedOrder()
    await t.request('PATCH', `/api/v1/orders/${b.order.id}/status`, { token: staff.access, body: { status: 'shipped' } })

    const all = (await t.request('GET', '/api/v1/orders?page_size=100', { token: staff.access })).json()
    const allIds = all.results.map((o: { id: number }) => o.id)
    expect(allIds).toEqual(expect.arrayContaining([a.order.id, b.order.id, c.order.id]))
    expect(allIds).toEqual([...allIds].sort((x: number, y: number) => y - x))

    const mine = (await t.request('GET', `/api/v1/orders?user=${a.owner.id}`, { token: staff.access })).json()
    expect(mine.results.map((o: { id: number }) => o.id)).toEqual([b.order.id, a.order.id])
    const shipped = (await t.request('GET', `/api/v1/orders?user=${a.owner.id}&status=shipped`, { token: staff.access })).json()
    expect(shipped.results.map((o: { id: number }) => o.id)).toEqual([b.order.id])
    const pending = (await t.request('GET', `/api/v1/orders?status=pending&page_size=100`, { token: staff.access })).json()
    expect(pending.results.every((o: { status: string }) => o.status === 'pending')).toBe(true)
  })

  it('answers 400 keyed by the parameter for an invalid filter', async () => {
    let res = await t.request('GET', '/api/v1/orders?status=lost', { token: staff.access })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ status: ['Select a valid choice. lost is not one of the available choices.'] })
    res = await t.request('GET', '/api/v1/orders?user=abc', { token: staff.access })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ user: ['Select a valid choice. That choice is not one of the available choices.'] })
    const user = await t.user()
    res = await t.request('GET', '/api/v1/orders?status=lost', { token: user.access })
    expect(res.statusCode).toBe(400)
  })

  it('places an order in a constant number of statements, answering exactly what reads back', async () => {
    const statementsFor = async (lines: number) => {
      const user = await t.user()
      for (let i = 0; i < lines; i++) await addToCart(t, user, (await makeProduct(t, { price: `${i + 1}.25`, stock: 5 })).id, 2)
      t.queries.length = 0
      const res = await place(user)
      const statements = t.queries.length
      expect(res.statusCode).toBe(201)
      expect(res.json().items).toHaveLength(lines)
      // Built from what the transaction wrote, it must be what any later read sees.
      expect((await t.request('GET', `/api/v1/orders/${res.json().id}`, { token: user.access })).json()).toEqual(res.json())
      return statements
    }
    const one = await statementsFor(1)
    expect(await statementsFor(6)).toBe(one)
    // BEGIN, lock and check the cart, write everything, COMMIT, refill the catalogue cache (the embedded driver
    // does not log BEGIN and COMMIT).
    expect(one).toBeLessThanOrEqual(5)
  })

  it('reads a page in a constant number of queries, whatever its size', async () => {
    const user = await t.user()
    const product = await makeProduct(t, { stock: 1000 })
    const other = await makeProduct(t, { stock: 1000 })
    for (let i = 0; i < 10; i++) {
      await addToCart(t, user, product.id, 1)
      await addToCart(t, user, other.id, 2)
      expect((await place(user)).statusCode).toBe(201)
    }
    const queriesFor = async (pageSize: number) => {
      t.queries.length = 0
      const res = await t.request('GET', `/api/v1/orders?page_size=${pageSize}`, { token: user.access })
      expect(res.json().results).toHaveLength(pageSize)
      return t.queries.length
    }
    const one = await queriesFor(1)
    expect(await queriesFor(10)).toBe(one)
    // auth + count + page + items + history
    expect(one).toBeLessThanOrEqual(5)
  })

  it("shows an order to its owner and staff, and someone else's as 404", async () => {
    const { owner, order } = await placedOrder()
    const stranger = await t.user()
    expect((await t.request('GET', `/api/v1/orders/${order.id}`, { token: owner.access })).statusCode).toBe(200)
    expect((await t.request('GET', `/api/v1/orders/${order.id}`, { token: staff.access })).json()).toEqual(order)
    const res = await t.request('GET', `/api/v1/orders/${order.id}`, { token: stranger.access })
    expect(res.statusCode).toBe(404)
    expect(res.json()).toEqual({ detail: 'Not found.' })
    expect((await t.request('GET', '/api/v1/orders/999999999', { token: owner.access })).statusCode).toBe(404)
    expect((await t.request('GET', '/api/v1/orders/nope', { token: owner.access })).statusCode).toBe(404)
  })
})

describe('status changes', () => {
  const patch = (id: number, status: unknown, token = staff.access) =>
    t.request('PATCH', `/api/v1/orders/${id}/status`, { token, body: { status } })

  it('is staff only (403 for the owner, before the body is looked at)', async () => {
    const { owner, order } = await placedOrder()
    let res = await patch(order.id, 'shipped', owner.access)
    expect(res.statusCode).toBe(403)
    expect(res.json()).toEqual({ detail: 'You do not have permission to perform this action.' })
    res = await patch(order.id, 'nonsense', owner.access)
    expect(res.statusCode).toBe(403)
    expect((await t.request('GET', `/api/v1/orders/${order.id}`, { token: owner.access })).json().status).toBe('pending')
  })

  it('moves pending → shipped → delivered, with history and notifications', async () => {
    const { owner, order } = await placedOrder()
    await databaseClockPast(t, order.updated_at)
    let res = await patch(order.id, 'shipped')
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: order.id, status: 'shipped' })
    res = await patch(order.id, 'delivered')
    expect(res.statusCode).toBe(200)
    const body = res.json()
    expect(body.status_history.map((h: { status: string }) => h.status)).toEqual(['pending', 'shipped', 'delivered'])
    expect(Date.parse(body.updated_at)).toBeGreaterThan(Date.parse(order.updated_at))
    const stored = await t.ctx.db
      .select({ status: notifications.status, previous: notifications.previousStatus })
      .from(notifications)
      .where(eq(notifications.orderId, order.id))
      .orderBy(asc(notifications.id))
    expect(stored).toEqual([
      { status: 'pending', previous: null },
      { status: 'shipped', previous: 'pending' },
      { status: 'delivered', previous: 'shipped' },
    ])
    expect((await t.request('GET', `/api/v1/orders/${order.id}`, { token: owner.access })).json()).toEqual(body)
  })

  it('answers 409 for every illegal transition and changes nothing', async () => {
    const { order } = await placedOrder()
    const expectConflict = async (to: string, from: string) => {
      const res = await patch(order.id, to)
      expect(res.statusCode).toBe(409)
      expect(res.json()).toEqual({ detail: `Cannot change status from ${from} to ${to}.` })
    }
    await expectConflict('delivered', 'pending')
    await expectConflict('pending', 'pending')
    await patch(order.id, 'shipped')
    await expectConflict('pending', 'shipped')
    await expectConflict('shipped', 'shipped')
    await expectConflict('cancelled', 'shipped')
    await patch(order.id, 'delivered')
    await expectConflict('shipped', 'delivered')
    await expectConflict('cancelled', 'delivered')
    const history = await t.ctx.db.select().from(orderStatusHistory).where(eq(orderStatusHistory.orderId, order.id))
    expect(history).toHaveLength(3)
  })

  it('validates the status and the order id', async () => {
    const { order } = await placedOrder()
    let res = await patch(order.id, 'lost')
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ status: ['Not a valid choice.'] })
    res = await patch(999_999_999, 'shipped')
    expect(res.statusCode).toBe(404)
  })

  it('lets only one of two simultaneous changes pass', async () => {
    const { order } = await placedOrder()
    const answers = await Promise.all([patch(order.id, 'shipped'), patch(order.id, 'shipped'), patch(order.id, 'cancelled')])
    const codes = answers.map((r) => r.statusCode).sort()
    expect(codes).toEqual([200, 409, 409])
    const history = await t.ctx.db.select().from(orderStatusHistory).where(eq(orderStatusHistory.orderId, order.id))
    expect(history).toHaveLength(2)
  })
})

describe('cancelling', () => {
  it('lets the owner cancel a pending order and puts the stock back', async () => {
    const { owner, product, order } = await placedOrder(undefined, 3)
    expect(await stockOf(t, product.id)).toBe(7)
    await cachedCatalogueShows(product.id, 7)
    const res = await t.request('POST', `/api/v1/orders/${order.id}/cancel`, { token: owner.access })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: order.id, status: 'cancelled' })
    expect(res.json().status_history.map((h: { status: string }) => h.status)).toEqual(['pending', 'cancelled'])
    expect(await stockOf(t, product.id)).toBe(10)
    expect(await catalogueStock(product.id)).toBe(10)
    const stored = await t.ctx.db.select().from(notifications).where(eq(notifications.orderId, order.id))
    expect(stored.map((n) => n.status).sort()).toEqual(['cancelled', 'pending'])

    const again = await t.request('POST', `/api/v1/orders/${order.id}/cancel`, { token: owner.access })
    expect(again.statusCode).toBe(409)
    expect(again.json()).toEqual({ detail: 'Cannot change status from cancelled to cancelled.' })
    expect(await stockOf(t, product.id)).toBe(10)
  })

  it('refuses to cancel a shipped order (409), stock unchanged', async () => {
    const { owner, product, order } = await placedOrder()
    await t.request('PATCH', `/api/v1/orders/${order.id}/status`, { token: staff.access, body: { status: 'shipped' } })
    const res = await t.request('POST', `/api/v1/orders/${order.id}/cancel`, { token: owner.access })
    expect(res.statusCode).toBe(409)
    expect(res.json()).toEqual({ detail: 'Cannot change status from shipped to cancelled.' })
    expect(await stockOf(t, product.id)).toBe(8)
  })

  it("answers 404 for someone else's order; staff may cancel any", async () => {
    const { product, order } = await placedOrder()
    const stranger = await t.user()
    expect((await t.request('POST', `/api/v1/orders/${order.id}/cancel`, { token: stranger.access })).statusCode).toBe(404)
    expect(await stockOf(t, product.id)).toBe(8)
    const res = await t.request('POST', `/api/v1/orders/${order.id}/cancel`, { token: staff.access })
    expect(res.statusCode).toBe(200)
    expect(await stockOf(t, product.id)).toBe(10)
  })

  it('restocks when staff set the status to cancelled', async () => {
    const { product, order } = await placedOrder()
    const res = await t.request('PATCH', `/api/v1/orders/${order.id}/status`, { token: staff.access, body: { status: 'cancelled' } })
    expect(res.statusCode).toBe(200)
    expect(res.json().status).toBe('cancelled')
    expect(await stockOf(t, product.id)).toBe(10)
  })

  it('restocks a product retired since the order', async () => {
    const { owner, product, order } = await placedOrder()
    await t.ctx.db.update(products).set({ isActive: false }).where(eq(products.id, product.id))
    expect((await t.request('POST', `/api/v1/orders/${order.id}/cancel`, { token: owner.access })).statusCode).toBe(200)
    expect(await stockOf(t, product.id)).toBe(10)
  })
})

describe('the orders table', () => {
  it('holds no order without its items and its history', async () => {
    const ids = (await t.ctx.db.select({ id: orders.id }).from(orders)).map((r) => r.id)
    expect(ids.length).toBeGreaterThan(0)
    const withItems = await t.ctx.db.selectDistinct({ id: orderItems.orderId }).from(orderItems).where(inArray(orderItems.orderId, ids))
    const withHistory = await t.ctx.db
      .selectDistinct({ id: orderStatusHistory.orderId })
      .from(orderStatusHistory)
      .where(inArray(orderStatusHistory.orderId, ids))
    expect(withItems).toHaveLength(ids.length)
    expect(withHistory).toHaveLength(ids.length)
  })
})
