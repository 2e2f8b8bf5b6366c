import { randomBytes } from 'node:crypto'
import { eq } from 'drizzle-orm'
import { categories, products } from '../src/db/schema.js'
import type { TestApp, TestUser } from './helpers.js'

/** Catalogue rows written straight to the database (the catalogue routes are another slice's). */
export async function makeProduct(
  t: TestApp,
  values: { price?: string; stock?: number; name?: string; isActive?: boolean } = {},
): Promise<{ id: number; name: string; price: string; stock: number }> {
  const tag = randomBytes(4).toString('hex')
  const [category] = await t.ctx.db.insert(categories).values({ name: `cat-${tag}` }).returning()
  const [product] = await t.ctx.db
    .insert(products)
    .values({
      name: values.name ?? `product-${tag}`,
      price: values.price ?? '10.00',
      stock: values.stock ?? 10,
      isActive: values.isActive ?? true,
      categoryId: category!.id,
    })
    .returning()
  return { id: product!.id, name: product!.name, price: product!.price, stock: product!.stock }
}

export async function stockOf(t: TestApp, productId: number): Promise<number> {
  const [row] = await t.ctx.db.select({ stock: products.stock }).from(products).where(eq(products.id, productId))
  return row!.stock
}

export async function addToCart(t: TestApp, user: TestUser, productId: number, quantity = 1) {
  const res = await t.request('POST', '/api/v1/cart/items', { token: user.access, body: { product_id: productId, quantity } })
  if (res.statusCode !== 201) throw new Error(`add to cart failed: ${res.statusCode} ${res.body}`)
  return res.json()
}
