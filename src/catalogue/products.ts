import { and, eq, inArray, sql } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db, Queryable, Tx } from '../db/index.js'
import { categories, orderItems, products } from '../db/schema.js'
import { isForeignKeyViolation } from '../db/errors.js'
import { notFound, validation, type FieldErrors } from '../http/errors.js'
import { PG_INT_MAX } from '../http/schemas.js'
import { parseMoney } from './decimal.js'
import { throwIfInvalid, trimmedName } from './fields.js'
import { type ProductFacts, productChangeScopes, productFamily } from './invalidation.js'
import type { ProductInput, ProductOut } from './schemas.js'

export const productColumns = {
  id: products.id,
  name: products.name,
  description: products.description,
  price: products.price,
  stock: products.stock,
  createdAt: products.createdAt,
  updatedAt: products.updatedAt,
  categoryId: categories.id,
  categoryName: categories.name,
}

interface ProductRow {
  id: number
  name: string
  description: string
  price: string
  stock: number
  createdAt: Date
  updatedAt: Date
  categoryId: number
  categoryName: string
}

export function serializeProduct(row: ProductRow): ProductOut {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    price: row.price,
    stock: row.stock,
    in_stock: row.stock > 0,
    category: { id: row.categoryId, name: row.categoryName },
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

/** The JSON text of each live product among `ids`, in one query; retired and missing ones are absent. */
export async function productTexts(db: Queryable, ids: readonly string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>()
  if (!ids.length) return out
  const rows = await db
    .select(productColumns)
    .from(products)
    .innerJoin(categories, eq(categories.id, products.categoryId))
    .where(and(inArray(products.id, ids.map(Number)), sql`${products.isActive}`))
  for (const row of rows) out.set(String(row.id), JSON.stringify(serializeProduct(row)))
  return out
}

/** Refills the cached texts of products just written (after commit), so list and detail reads keep hitting. */
export function refreshProducts(ctx: { db: Db; cache: VersionedCache }, ids: readonly number[]): Promise<void> {
  return ctx.cache.refreshItems(ids.map(String), productFamily, (missing) => productTexts(ctx.db, missing))
}

/** The live product, or undefined. */
export async function findProduct(db: Queryable, id: number): Promise<ProductOut | undefined> {
  const [row] = await db
    .select(productColumns)
    .from(products)
    .innerJoin(categories, eq(categories.id, products.categoryId))
    .where(and(eq(products.id, id), sql`${products.isActive}`))
  return row && serializeProduct(row)
}

export async function getProduct(db: Queryable, id: number): Promise<ProductOut> {
  const product = await findProduct(db, id)
  if (!product) throw notFound()
  return product
}

const invalidPk = (id: number) => `Invalid pk "${id}" - object does not exist.`

/** Checks a product body beyond its JSON schema; returns the columns to write. */
async function productValues(db: Queryable, input: ProductInput) {
  const errors: FieldErrors = {}
  const name = trimmedName(input.name, errors)
  let price: string | undefined
  if (input.price !== undefined) {
    const parsed = parseMoney(input.price)
    if (parsed.ok) price = parsed.value
    else errors.price = [parsed.error]
  }
  if (input.category_id !== undefined) {
    const id = input.category_id
    const exists =
      id >= 1 && id <= PG_INT_MAX && (await db.select({ id: categories.id }).from(categories).where(eq(categories.id, id))).length
    if (!exists) errors.category_id = [invalidPk(id)]
  }
  throwIfInvalid(errors)
  return {
    ...(name !== undefined ? { name } : {}),
    ...(input.description !== undefined ? { description: input.description } : {}),
    ...(price !== undefined ? { price } : {}),
    ...(input.stock !== undefined ? { stock: input.stock } : {}),
    ...(input.category_id !== undefined ? { categoryId: input.category_id } : {}),
  }
}

/** A category deleted between the check and the write trips the foreign key: the same 400 as a missing one. */
async function guardCategoryRef<T>(input: ProductInput, work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (input.category_id !== undefined && isForeignKeyViolation(err)) {
      throw validation({ category_id: [invalidPk(input.category_id)] })
    }
    throw err
  }
}

/** What the cache invalidation of a product write compares, returned by the write itself. */
const factColumns = {
  categoryId: products.categoryId,
  price: products.price,
  stock: products.stock,
  name: products.name,
  description: products.description,
}

export async function createProduct(ctx: { db: Db; cache: VersionedCache }, input: ProductInput & { name: string; category_id: number }): Promise<ProductOut> {
  const values = await productValues(ctx.db, input)
  return guardCategoryRef(input, () =>
    ctx.cache.invalidate((mark) =>
      ctx.db.transaction(async (tx) => {
        const [row] = await tx
          .insert(products)
          .values({ ...values, name: values.name!, price: values.price!, categoryId: values.categoryId! })
          .returning({ id: products.id, ...factColumns })
        await mark(productChangeScopes(row!.id, null, row!))
        return getProduct(tx, row!.id)
      }),
    ),
  )
}

/** The product's facts, its row locked until commit: the write's scopes are computed from what it replaces. */
async function lockProduct(tx: Tx, id: number): Promise<ProductFacts> {
  const [before] = await tx
    .select(factColumns)
    .from(products)
    .where(and(eq(products.id, id), sql`${products.isActive}`))
    .for('update')
  if (!before) throw notFound()
  return before
}

export async function updateProduct(ctx: { db: Db; cache: VersionedCache }, id: number, input: ProductInput): Promise<ProductOut> {
  const values = await productValues(ctx.db, input)
  const product = await guardCategoryRef(input, () =>
    ctx.cache.invalidate((mark) =>
      ctx.db.transaction(async (tx) => {
        const before = await lockProduct(tx, id)
        const [after] = await tx
          .update(products)
          .set({ ...values, updatedAt: sql`now()` })
          .where(eq(products.id, id))
          .returning(factColumns)
        await mark(productChangeScopes(id, before, after!))
        return getProduct(tx, id)
      }),
    ),
  )
  await refreshProducts(ctx, [id])
  return product
}

/**
 * A product that appears in orders is retired (kept for their history, hidden everywhere else); any other product
 * is deleted. Its row is locked first: an order placed meanwhile (which decrements, hence locks, the row before it
 * inserts its items) either committed before, and its items are seen, or waits until after.
 */
export async function deleteProduct(ctx: { db: Db; cache: VersionedCache }, id: number): Promise<'deleted' | 'retired'> {
  return ctx.cache.invalidate((mark) =>
    ctx.db.transaction(async (tx) => {
      await mark(productChangeScopes(id, await lockProduct(tx, id), null))
      const deleted = await tx
        .delete(products)
        .where(and(eq(products.id, id), sql`NOT EXISTS (SELECT 1 FROM ${orderItems} WHERE ${orderItems.productId} = ${products.id})`))
        .returning({ id: products.id })
      if (deleted.length) return 'deleted' as const
      await tx.update(products).set({ isActive: false, updatedAt: sql`now()` }).where(eq(products.id, id))
      return 'retired' as const
    }),
  )
}
