import { randomBytes } from 'node:crypto'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eq } from 'drizzle-orm'
import { orderItems, orders, products } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp, databaseClockPast } from './helpers.js'

let t: TestApp
let staff: TestUser
let customer: TestUser
beforeAll(async () => {
  t = await createTestApp()
  ;[staff, customer] = await Promise.all([t.user({ staff: true }), t.user()])
})
afterAll(async () => {
  await t?.close()
})

const unique = (prefix: string) => `${prefix} ${randomBytes(4).toString('hex')}`

async function newCategory(name = unique('Category')): Promise<{ id: number; name: string }> {
  const res = await t.request('POST', '/api/v1/categories', { token: staff.access, body: { name } })
  expect(res.statusCode).toBe(201)
  return res.json()
}

async function newProduct(fields: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const category_id = fields.category_id ?? (await newCategory()).id
  const res = await t.request('POST', '/api/v1/products', {
    token: staff.access,
    body: { name: unique('Product'), price: '19.99', stock: 5, ...fields, category_id },
  })
  expect(res.statusCode, res.body).toBe(201)
  return res.json()
}

/** Makes a product "appear in orders", as the orders slice would. */
async function orderProduct(productId: number, userId = customer.id): Promise<void> {
  const [order] = await t.ctx.db
    .insert(orders)
    .values({ userId, totalPrice: '19.99', shippingAddress: { line1: '', line2: '', city: '', state: '', postal_code: '', country: '' } })
    .returning()
  await t.ctx.db.insert(orderItems).values({ orderId: order!.id, productId, productName: 'snapshot', unitPrice: '19.99', quantity: 1 })
}

describe('categories', () => {
  it('lets staff create, read, rename and delete a category', async () => {
    const name = unique('Garden')
    const created = await t.request('POST', '/api/v1/categories/', { token: staff.access, body: { name: `  ${name} `, description: 'Outdoors' } })
    expect(created.statusCode).toBe(201)
    const category = created.json()
    expect(category).toMatchObject({ name, description: 'Outdoors' })
    expect(Object.keys(category).sort()).toEqual(['created_at', 'description', 'id', 'name', 'updated_at'])

    const read = await t.request('GET', `/api/v1/categories/${category.id}`)
    expect(read.statusCode).toBe(200)
    expect(read.json()).toEqual(category)

    const put = await t.request('PUT', `/api/v1/categories/${category.id}`, { token: staff.access, body: { name: `${name} 2` } })
    expect(put.statusCode).toBe(200)
    expect(put.json()).toMatchObject({ name: `${name} 2`, description: 'Outdoors' })
    const patch = await t.request('PATCH', `/api/v1/categories/${category.id}/`, { token: staff.access, body: { description: 'Plants' } })
    expect(patch.json()).toMatchObject({ name: `${name} 2`, description: 'Plants' })

    const del = await t.request('DELETE', `/api/v1/categories/${category.id}`, { token: staff.access })
    expect(del.statusCode).toBe(204)
    expect(del.body).toBe('')
    expect((await t.request('GET', `/api/v1/categories/${category.id}`)).statusCode).toBe(404)
    expect((await t.request('DELETE', `/api/v1/categories/${category.id}`, { token: staff.access })).statusCode).toBe(404)
  })

  it('refuses writes to anonymous (401) and non-staff (403) users', async () => {
    const category = await newCategory()
    const writes: [string, string, unknown][] = [
      ['POST', '/api/v1/categories', { name: unique('Nope') }],
      ['PUT', `/api/v1/categories/${category.id}`, { name: unique('Nope') }],
      ['PATCH', `/api/v1/categories/${category.id}`, { name: unique('Nope') }],
      ['DELETE', `/api/v1/categories/${category.id}`, undefined],
    ]
    for (const [method, url, body] of writes) {
      const anonymous = await t.request(method, url, { body })
      expect(anonymous.statusCode).toBe(401)
      expect(anonymous.json()).toEqual({ detail: 'Authentication credentials were not provided.' })
      const user = await t.request(method, url, { body, token: customer.access })
      expect(user.statusCode).toBe(403)
      expect(user.json()).toEqual({ detail: 'You do not have permission to perform this action.' })
    }
    expect((await t.request('GET', `/api/v1/categories/${category.id}`)).json().name).toBe(category.name)
  })

  it('refuses a duplicate name in any case, and a blank or missing one', async () => {
    const category = await newCategory()
    for (const name of [category.name, category.name.toUpperCase(), ` ${category.name.toLowerCase()} `]) {
      const res = await t.request('POST', '/api/v1/categories', { token: staff.access, body: { name } })
      expect(res.statusCode).toBe(400)
      expect(res.json()).toEqual({ name: ['category with this name already exists.'] })
    }
    const other = await newCategory()
    const rename = await t.request('PATCH', `/api/v1/categories/${other.id}`, { token: staff.access, body: { name: category.name.toUpperCase() } })
    expect(rename.statusCode).toBe(400)
    expect(rename.json()).toEqual({ name: ['category with this name already exists.'] })
    // Renaming a category to another case of its own name is allowed.
    const recase = await t.request('PATCH', `/api/v1/categories/${other.id}`, { token: staff.access, body: { name: other.name.toUpperCase() } })
    expect(recase.statusCode).toBe(200)

    expect((await t.request('POST', '/api/v1/categories', { token: staff.access, body: { name: '   ' } })).json()).toEqual({
      name: ['This field may not be blank.'],
    })
    expect((await t.request('POST', '/api/v1/categories', { token: staff.access, body: {} })).json()).toEqual({
      name: ['This field is required.'],
    })
    expect((await t.request('POST', '/api/v1/categories', { token: staff.access, body: { name: 'x'.repeat(101) } })).json()).toEqual({
      name: ['Ensure this field has no more than 100 characters.'],
    })
  })

  it('refuses to delete a category that still has products (409), even retired ones', async () => {
    const category = await newCategory()
    const product = await newProduct({ category_id: category.id })
    const res = await t.request('DELETE', `/api/v1/categories/${category.id}`, { token: staff.access })
    expect(res.statusCode).toBe(409)
    expect(res.json().detail).toMatch(/still has products/)
    expect((await t.request('GET', `/api/v1/categories/${category.id}`)).statusCode).toBe(200)

    await orderProduct(product.id)
    expect((await t.request('DELETE', `/api/v1/products/${product.id}`, { token: staff.access })).statusCode).toBe(204)
    expect((await t.request('DELETE', `/api/v1/categories/${category.id}`, { token: staff.access })).statusCode).toBe(409)
  })

  it('lists categories by name, paginated', async () => {
    const prefix = `zz-${randomBytes(3).toString('hex')}`
    for (const suffix of ['b', 'A', 'c']) await newCategory(`${prefix} ${suffix}`)
    let url: string | null = '/api/v1/categories?page_size=100'
    const names: string[] = []
    let count = 0
    while (url) {
      const res = await t.request('GET', url)
      expect(res.statusCode).toBe(200)
      const body = res.json()
      count = body.count
      names.push(...body.results.map((c: { name: string }) => c.name))
      url = body.next ? new URL(body.next).pathname + new URL(body.next).search : null
    }
    expect(names).toHaveLength(count)
    const mine = names.filter((n) => n.startsWith(prefix))
    expect(mine).toHaveLength(3)
    const sorted = (await t.ctx.db.execute<{ name: string }>(
      `SELECT name FROM categories WHERE name LIKE '${prefix}%' ORDER BY name, id` as never,
    )) as { rows: { name: string }[] }
    expect(mine).toEqual(sorted.rows.map((r) => r.name))

    const small = (await t.request('GET', '/api/v1/categories?page_size=1&page=2')).json()
    expect(small.results).toHaveLength(1)
    expect(small.next).toBe('http://localhost/api/v1/categories?page=3&page_size=1')
    expect(small.previous).toBe('http://localhost/api/v1/categories?page_size=1')
    expect((await t.request('GET', '/api/v1/categories?page=9999')).json()).toEqual({ detail: 'Invalid page.' })
  })
})

describe('products: writes', () => {
  it('creates a product with money as a 2-place string and its category nested', async () => {
    const category = await newCategory()
    const res = await t.request('POST', '/api/v1/products', {
      token: staff.access,
      body: { name: 'Lamp', description: 'Bright', price: 5, stock: 0, category_id: category.id },
    })
    expect(res.statusCode).toBe(201)
    const product = res.json()
    expect(product).toMatchObject({
      name: 'Lamp',
      description: 'Bright',
      price: '5.00',
      stock: 0,
      in_stock: false,
      category: { id: category.id, name: category.name },
    })
    expect(Object.keys(product).sort()).toEqual(
      ['category', 'created_at', 'description', 'id', 'in_stock', 'name', 'price', 'stock', 'updated_at'].sort(),
    )
    const number = await newProduct({ price: 19.99 })
    expect(number.price).toBe('19.99')
    const string = await newProduct({ price: '1234567890.5' })
    expect(string.price).toBe('1234567890.50')
    const defaults = await t.request('POST', '/api/v1/products', {
      token: staff.access,
      body: { name: 'Bare', price: '0', category_id: category.id },
    })
    expect(defaults.json()).toMatchObject({ price: '0.00', stock: 0, description: '' })
  })

  it.each([
    [{ price: '-1' }, { price: ['Ensure this value is greater than or equal to 0.'] }],
    [{ price: -0.5 }, { price: ['Ensure this value is greater than or equal to 0.'] }],
    [{ price: '19.999' }, { price: ['Ensure that there are no more than 2 decimal places.'] }],
    [{ price: '12345678901' }, { price: ['Ensure that there are no more than 10 digits before the decimal point.'] }],
    [{ price: '1234567890123' }, { price: ['Ensure that there are no more than 12 digits in total.'] }],
    [{ price: 'abc' }, { price: ['A valid number is required.'] }],
    [{ price: '' }, { price: ['A valid number is required.'] }],
    [{ price: null }, { price: ['This field may not be null.'] }],
    [{ price: true }, { price: ['A valid number is required.'] }],
    [{ stock: -1 }, { stock: ['Ensure this value is greater than or equal to 0.'] }],
    [{ stock: 1.5 }, { stock: ['A valid integer is required.'] }],
    [{ stock: '3' }, { stock: ['A valid integer is required.'] }],
    [{ category_id: 999_999 }, { category_id: ['Invalid pk "999999" - object does not exist.'] }],
    [{ name: ' ' }, { name: ['This field may not be blank.'] }],
  ])('refuses %j', async (change, errors) => {
    const category = await newCategory()
    const res = await t.request('POST', '/api/v1/products', {
      token: staff.access,
      body: { name: 'Valid', price: '1.00', stock: 1, category_id: category.id, ...change },
    })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual(errors)
  })

  it('reports every invalid field at once, and required ones', async () => {
    const res = await t.request('POST', '/api/v1/products', { token: staff.access, body: { name: ' ', price: '1.234', category_id: 99 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({
      name: ['This field may not be blank.'],
      price: ['Ensure that there are no more than 2 decimal places.'],
      category_id: ['Invalid pk "99" - object does not exist.'],
    })
    const missing = await t.request('POST', '/api/v1/products', { token: staff.access, body: {} })
    expect(missing.json()).toEqual({
      name: ['This field is required.'],
      price: ['This field is required.'],
      category_id: ['This field is required.'],
    })
  })

  it('replaces (PUT) and updates (PATCH) a product, validating the same way', async () => {
    const product = await newProduct()
    const other = await newCategory()
    const put = await t.request('PUT', `/api/v1/products/${product.id}`, {
      token: staff.access,
      body: { name: 'Renamed', price: '7.5', category_id: other.id },
    })
    expect(put.statusCode).toBe(200)
    expect(put.json()).toMatchObject({ name: 'Renamed', price: '7.50', stock: 5, category: { id: other.id, name: other.name } })
    const putMissing = await t.request('PUT', `/api/v1/products/${product.id}`, { token: staff.access, body: { name: 'X' } })
    expect(putMissing.json()).toEqual({ price: ['This field is required.'], category_id: ['This field is required.'] })

    await databaseClockPast(t, put.json().updated_at)
    const patch = await t.request('PATCH', `/api/v1/products/${product.id}`, { token: staff.access, body: { stock: 0 } })
    expect(patch.json()).toMatchObject({ name: 'Renamed', stock: 0, in_stock: false })
    expect(Date.parse(patch.json().updated_at)).toBeGreaterThan(Date.parse(put.json().updated_at))
    const bad = await t.request('PATCH', `/api/v1/products/${product.id}`, { token: staff.access, body: { price: '1e20', category_id: 0 } })
    expect(bad.json()).toEqual({
      price: ['Ensure that there are no more than 12 digits in total.'],
      category_id: ['Invalid pk "0" - object does not exist.'],
    })
    expect((await t.request('PATCH', '/api/v1/products/999999', { token: staff.access, body: { stock: 1 } })).statusCode).toBe(404)
    expect((await t.request('GET', '/api/v1/products/abc')).statusCode).toBe(404)
  })

  it('refuses product writes to anonymous (401) and non-staff (403) users', async () => {
    const product = await newProduct()
    const writes: [string, string, unknown][] = [
      ['POST', '/api/v1/products', { name: 'x', price: '1', category_id: product.category.id }],
      ['PUT', `/api/v1/products/${product.id}`, { name: 'x', price: '1', category_id: product.category.id }],
      ['PATCH', `/api/v1/products/${product.id}`, { stock: 1 }],
      ['DELETE', `/api/v1/products/${product.id}`, undefined],
      ['POST', `/api/v1/products/${product.id}/stock`, { delta: 1 }],
    ]
    for (const [method, url, body] of writes) {
      expect((await t.request(method, url, { body })).statusCode).toBe(401)
      expect((await t.request(method, url, { body, token: customer.access })).statusCode).toBe(403)
    }
    expect((await t.request('GET', `/api/v1/products/${product.id}`)).json()).toEqual(product)
  })

  it('really deletes a product that appears in no order', async () => {
    const product = await newProduct()
    expect((await t.request('DELETE', `/api/v1/products/${product.id}`, { token: staff.access })).statusCode).toBe(204)
    expect(await t.ctx.db.select().from(products).where(eq(products.id, product.id))).toEqual([])
    expect((await t.request('GET', `/api/v1/products/${product.id}`)).statusCode).toBe(404)
  })

  it('retires a product that appears in orders: hidden from lists and detail, kept for history', async () => {
    const product = await newProduct()
    await orderProduct(product.id)
    const listed = (await t.request('GET', `/api/v1/products?category=${product.category.id}`)).json()
    expect(listed.count).toBe(1)

    const del = await t.request('DELETE', `/api/v1/products/${product.id}`, { token: staff.access })
    expect(del.statusCode).toBe(204)
    const [row] = await t.ctx.db.select().from(products).where(eq(products.id, product.id))
    expect(row).toMatchObject({ id: product.id, isActive: false })
    expect((await t.request('GET', `/api/v1/products/${product.id}`)).statusCode).toBe(404)
    expect((await t.request('GET', `/api/v1/products?category=${product.category.id}`)).json()).toMatchObject({ count: 0, results: [] })
    // Retired is gone for every catalogue operation.
    expect((await t.request('PATCH', `/api/v1/products/${product.id}`, { token: staff.access, body: { stock: 3 } })).statusCode).toBe(404)
    expect((await t.request('POST', `/api/v1/products/${product.id}/stock`, { token: staff.access, body: { delta: 1 } })).statusCode).toBe(404)
    expect((await t.request('DELETE', `/api/v1/products/${product.id}`, { token: staff.access })).statusCode).toBe(404)
  })
})

describe('products: stock adjustment', () => {
  it('adds and removes stock atomically, and refuses to go below zero (409)', async () => {
    const product = await newProduct({ stock: 5 })
    const url = `/api/v1/products/${product.id}/stock`
    const up = await t.request('POST', url, { token: staff.access, body: { delta: 3 } })
    expect(up.statusCode).toBe(200)
    expect(up.json()).toMatchObject({ id: product.id, stock: 8, in_stock: true, price: '19.99' })
    const down = await t.request('POST', url, { token: staff.access, body: { delta: -8 } })
    expect(down.json()).toMatchObject({ stock: 0, in_stock: false })
    const below = await t.request('POST', url, { token: staff.access, body: { delta: -1 } })
    expect(below.statusCode).toBe(409)
    expect(below.json()).toMatchObject({ detail: expect.stringMatching(/stock/i), stock: 0 })
    expect((await t.request('GET', `/api/v1/products/${product.id}`)).json().stock).toBe(0)

    expect((await t.request('POST', url, { token: staff.access, body: { delta: 'x' } })).json()).toEqual({
      delta: ['A valid integer is required.'],
    })
    expect((await t.request('POST', url, { token: staff.access, body: {} })).json()).toEqual({ delta: ['This field is required.'] })
    expect((await t.request('POST', url, { token: staff.access, body: { delta: 2_147_483_647 } })).statusCode).toBe(200)
    expect((await t.request('POST', url, { token: staff.access, body: { delta: 1 } })).statusCode).toBe(400)
    expect((await t.request('POST', '/api/v1/products/999999/stock', { token: staff.access, body: { delta: 1 } })).statusCode).toBe(404)
  })

  it('never sells a unit twice under concurrent decrements', async () => {
    const product = await newProduct({ stock: 10 })
    const results = await Promise.all(
      Array.from({ length: 25 }, () =>
        t.request('POST', `/api/v1/products/${product.id}/stock`, { token: staff.access, body: { delta: -1 } }),
      ),
    )
    expect(results.filter((r) => r.statusCode === 200)).toHaveLength(10)
    expect(results.filter((r) => r.statusCode === 409)).toHaveLength(15)
    expect((await t.request('GET', `/api/v1/products/${product.id}`)).json().stock).toBe(0)
  })
})

describe('cache', () => {
  it('serves a repeated read from the cache: MISS then HIT, with the same body', async () => {
    const product = await newProduct()
    for (const url of [`/api/v1/products/${product.id}`, `/api/v1/products?category=${product.category.id}`, `/api/v1/categories/${product.category.id}`, '/api/v1/categories']) {
      const first = await t.request('GET', url)
      const second = await t.request('GET', url)
      expect(first.headers['x-cache'], url).toBe('MISS')
      expect(second.headers['x-cache'], url).toBe('HIT')
      expect(second.headers['content-type']).toMatch(/^application\/json/)
      expect(second.body).toBe(first.body)
    }
  })

  it('shares one cache entry across equivalent queries (normalized)', async () => {
    const product = await newProduct()
    const c = product.category.id
    const first = await t.request('GET', `/api/v1/products?category=${c}&ordering=price&page=1&page_size=10&utm_source=x`)
    expect(first.headers['x-cache']).toBe('MISS')
    const same = await t.request('GET', `/api/v1/products/?ordering=price&category=${c}&foo=bar`)
    expect(same.headers['x-cache']).toBe('HIT')
    expect(same.body).toBe(first.body)
    const other = await t.request('GET', `/api/v1/products?category=${c}&ordering=-price`)
    expect(other.headers['x-cache']).toBe('MISS')
  })

  it('keys list pages by host and protocol, since their links are absolute', async () => {
    const category = await newCategory()
    for (let i = 0; i < 11; i++) await newProduct({ category_id: category.id })
    const a = await t.request('GET', `/api/v1/products?category=${category.id}`, { headers: { host: 'a.example' } })
    const b = await t.request('GET', `/api/v1/products?category=${category.id}`, { headers: { host: 'b.example' } })
    expect(b.headers['x-cache']).toBe('MISS')
    expect(a.json().next).toBe(`http://a.example/api/v1/products?category=${category.id}&page=2`)
    expect(b.json().next).toBe(`http://b.example/api/v1/products?category=${category.id}&page=2`)
  })

  it('never shows old data after a product write: detail, list and filtered list', async () => {
    const product = await newProduct({ price: '10.00', stock: 4 })
    const c = product.category.id
    const urls = {
      detail: `/api/v1/products/${product.id}`,
      list: `/api/v1/products?category=${c}`,
      filtered: `/api/v1/products?category=${c}&max_price=15`,
    }
    for (const url of Object.values(urls)) {
      await t.request('GET', url)
      expect((await t.request('GET', url)).headers['x-cache']).toBe('HIT')
    }
    await t.request('PATCH', urls.detail, { token: staff.access, body: { price: '20.00' } })
    expect((await t.request('GET', urls.detail)).json().price).toBe('20.00')
    expect((await t.request('GET', urls.list)).json().results[0].price).toBe('20.00')
    expect((await t.request('GET', urls.filtered)).json().count).toBe(0)

    await t.request('POST', `${urls.detail}/stock`, { token: staff.access, body: { delta: -4 } })
    expect((await t.request('GET', urls.detail)).json()).toMatchObject({ stock: 0, in_stock: false })
    expect((await t.request('GET', urls.list)).json().results[0].stock).toBe(0)
    expect((await t.request('GET', `${urls.list}&in_stock=true`)).json().count).toBe(0)
  })

  it('never shows an old category name, in the category or in its products', async () => {
    const product = await newProduct()
    const c = product.category.id
    const urls = [`/api/v1/products/${product.id}`, `/api/v1/products?category=${c}`, `/api/v1/categories/${c}`, '/api/v1/categories?page_size=100']
    for (const url of urls) await t.request('GET', url)
    const name = unique('Renamed')
    await t.request('PATCH', `/api/v1/categories/${c}`, { token: staff.access, body: { name } })
    expect((await t.request('GET', urls[0]!)).json().category.name).toBe(name)
    expect((await t.request('GET', urls[1]!)).json().results[0].category.name).toBe(name)
    expect((await t.request('GET', urls[2]!)).json().name).toBe(name)
    expect((await t.request('GET', urls[3]!)).body).toContain(name)
  })

  it('shows a new product in a cached list, and drops a deleted one', async () => {
    const category = await newCategory()
    const url = `/api/v1/products?category=${category.id}`
    await t.request('GET', url)
    const product = await newProduct({ category_id: category.id })
    expect((await t.request('GET', url)).json().results.map((p: { id: number }) => p.id)).toEqual([product.id])
    await t.request('DELETE', `/api/v1/products/${product.id}`, { token: staff.access })
    expect((await t.request('GET', url)).json().count).toBe(0)
  })

  it('keeps lists and counts cached across stock changes, except those that filter on stock when it crosses zero', async () => {
    const product = await newProduct({ stock: 3 })
    const c = product.category.id
    await t.request('GET', `/api/v1/products?category=${c}`)
    await t.request('GET', `/api/v1/products?category=${c}&in_stock=true`)
    await t.request('POST', `/api/v1/products/${product.id}/stock`, { token: staff.access, body: { delta: -3 } })

    t.queries.length = 0
    const plain = await t.request('GET', `/api/v1/products?category=${c}`)
    expect(plain.headers['x-cache']).toBe('HIT')
    expect(plain.json()).toMatchObject({ count: 1, results: [{ stock: 0, in_stock: false }] })
    expect(t.queries).toEqual([])
    const stocked = await t.request('GET', `/api/v1/products?category=${c}&in_stock=true`)
    expect(stocked.headers['x-cache']).toBe('MISS')
    expect(stocked.json()).toMatchObject({ count: 0, results: [] })
    // The page's ids and its count, read again; no product to load.
    expect(t.queries).toHaveLength(2)

    // A new product changes what the category's counts are.
    await newProduct({ category_id: c })
    t.queries.length = 0
    const grown = await t.request('GET', `/api/v1/products?category=${c}`)
    expect([grown.headers['x-cache'], grown.json().count]).toEqual(['MISS', 2])
    // The page's ids, its count and the new product (the other one's entry is still cached).
    expect(t.queries).toHaveLength(3)
  })

  it('loads concurrent identical misses once (single-flight)', async () => {
    const product = await newProduct()
    const url = `/api/v1/products?category=${product.category.id}&ordering=-created_at`
    t.queries.length = 0
    const responses = await Promise.all(Array.from({ length: 20 }, () => t.request('GET', url)))
    expect(new Set(responses.map((r) => r.body)).size).toBe(1)
    expect(responses.every((r) => r.statusCode === 200)).toBe(true)
    // As many statements as one miss: the page's ids, its count, its product.
    expect(t.queries).toHaveLength(3)
  })
})

describe('cache disabled (CACHE_TTL_SECONDS=0)', () => {
  let uncached: TestApp
  beforeAll(async () => {
    uncached = await createTestApp({ config: { cacheTtlSeconds: 0 } })
  })
  afterAll(async () => {
    await uncached?.close()
  })

  it('always answers MISS and reads the database every time', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await uncached.request('GET', '/api/v1/products')
      expect(res.statusCode).toBe(200)
      expect(res.headers['x-cache']).toBe('MISS')
      expect((await uncached.request('GET', '/api/v1/categories')).headers['x-cache']).toBe('MISS')
    }
  })
})
