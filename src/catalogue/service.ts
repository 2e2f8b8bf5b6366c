import { type SQL, and, asc, count, desc, eq, inArray, sql } from 'drizzle-orm'
import type { AppContext } from '../context.js'
import type { Queryable, Tx } from '../db/index.js'
import { categories, orderItems, products } from '../db/schema.js'
import { ApiError, conflict, notFound, validation, type FieldErrors } from '../http/errors.js'
import { type Page, type PageOrigin, type PageRequest, buildPage, selfUrl } from '../http/pagination.js'
import { isForeignKeyViolation, isUniqueViolation } from '../db/errors.js'
import { parseMoney } from './decimal.js'
import {
  type ProductFacts,
  categoryWriteScopes,
  productChangeScopes,
  productFamily,
  stockChangeScopes,
} from './invalidation.js'
import {
  type CursorPosition,
  type ProductFilters,
  type ProductListRequest,
  encodeCursor,
  isDescending,
  sortField,
} from './query.js'
import type { CategoryInput, CategoryOut, ProductInput, ProductOut } from './schemas.js'

type CategoryRow = typeof categories.$inferSelect

export function serializeCategory(row: CategoryRow): CategoryOut {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

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

// ---------------------------------------------------------------------------------------------------------- reads

/** Page-number pagination: the rows (with their category) and the count, two queries run side by side. */
async function paged<T>(origin: PageOrigin, page: PageRequest, rows: Promise<T[]>, total: Promise<number>): Promise<Page<T>> {
  const [results, counted] = await Promise.all([rows, total])
  return buildPage(origin, page, counted, results)
}

async function countOf(query: PromiseLike<{ n: number }[]>): Promise<number> {
  const [row] = await query
  return row?.n ?? 0
}

export async function listCategories(db: Queryable, origin: PageOrigin, page: PageRequest): Promise<Page<CategoryOut>> {
  const rows = db.select().from(categories).orderBy(asc(categories.name), asc(categories.id)).limit(page.limit).offset(page.offset)
  const result = await paged(origin, page, rows, countOf(db.select({ n: count() }).from(categories)))
  return { ...result, results: result.results.map(serializeCategory) }
}

export async function getCategory(db: Queryable, id: number): Promise<CategoryOut> {
  const [row] = await db.select().from(categories).where(eq(categories.id, id))
  if (!row) throw notFound()
  return serializeCategory(row)
}

/**
 * The search predicate is written on exactly the expression of the trigram index `products_search_trgm_idx`
 * (`name || ' ' || description`), so `ILIKE '%term%'` can use it.
 */
function searchCondition(term: string): SQL {
  const pattern = `%${term.replace(/[\\%_]/g, '\\$&')}%`
  return sql`(${products.name} || ' ' || ${products.description}) ILIKE ${pattern}`
}

function filterConditions(f: ProductFilters): SQL[] {
  // Literal predicates (not parameters), so the planner can match the partial indexes' WHERE clauses.
  const conditions: SQL[] = [sql`${products.isActive}`]
  if (f.categories.length === 1) conditions.push(eq(products.categoryId, f.categories[0]!))
  else if (f.categories.length > 1) conditions.push(inArray(products.categoryId, f.categories))
  if (f.minPrice !== null) conditions.push(sql`${products.price} >= ${f.minPrice}::numeric`)
  if (f.maxPrice !== null) conditions.push(sql`${products.price} <= ${f.maxPrice}::numeric`)
  if (f.inStock === true) conditions.push(sql`${products.stock} > 0`)
  if (f.inStock === false) conditions.push(sql`${products.stock} = 0`)
  for (const term of f.terms) conditions.push(searchCondition(term))
  return conditions
}

/** The sort column, and its value as exact text for a cursor (timestamps keep their microseconds). */
const sortColumns = {
  price: { column: products.price, key: sql<string>`${products.price}::text`, cast: sql`::numeric` },
  name: { column: products.name, key: sql<string>`${products.name}`, cast: sql`` },
  created_at: {
    column: products.createdAt,
    key: sql<string>`to_char(${products.createdAt} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
    cast: sql`::timestamptz`,
  },
}

function orderBy(request: ProductListRequest, reverse = false): SQL[] {
  const descending = isDescending(request.ordering) !== reverse
  const direction = descending ? desc : asc
  const field = sortField(request.ordering)
  // Always tie-break on id, in the same direction, so that one index serves the order and keyset pages are exact.
  return field === 'id' ? [direction(products.id)] : [direction(sortColumns[field].column), direction(products.id)]
}

/** Rows strictly after (or before, going back) a position, as a row comparison a (column, id) index can seek to. */
function keysetCondition(request: ProductListRequest, at: CursorPosition): SQL {
  const after = isDescending(request.ordering) === at.backward
  const op = sql.raw(after ? '>' : '<')
  const field = sortField(request.ordering)
  if (field === 'id') return sql`${products.id} ${op} ${at.id}`
  const { column, cast } = sortColumns[field]
  return sql`(${column}, ${products.id}) ${op} (${at.value}${cast}, ${at.id})`
}

/** Where a product count comes from: the database, or a cache wrapped around the given loader. */
export type CountSource = (load: () => Promise<number>) => Promise<number>

/** A page without its products: which ids it shows, in order, and its JSON text before and after them. */
export interface ProductPageFrame {
  ids: string[]
  head: string
  tail: string
}

/** `{..."results":[]}` split around the empty array, so stored product texts can be concatenated in. */
function frame(ids: readonly number[], envelope: object): ProductPageFrame {
  const text = JSON.stringify(envelope)
  if (!text.endsWith('[]}')) throw new Error('a page envelope must end with its results')
  return { ids: ids.map(String), head: text.slice(0, -2), tail: text.slice(-2) }
}

/** Whether the page is read backwards from a cursor (then reversed into display order). */
const readsBackward = (request: ProductListRequest) => request.cursor !== null && request.cursor !== 'start' && request.cursor.backward

/**
 * The page's ids in display order (for a cursor page, one more row than the page tells whether another follows),
 * with each row's sort key as exact text for cursors: an index-only scan where an index matches.
 */
function pageIds(db: Queryable, request: ProductListRequest) {
  const conditions = filterConditions(request.filters)
  const { page, cursor } = request
  const field = sortField(request.ordering)
  if (cursor !== null && cursor !== 'start') conditions.push(keysetCondition(request, cursor))
  // Page numbers need no sort key: the id alone keeps the scan index-only.
  const sortKey = cursor === null ? undefined : (field === 'id' ? sql<string | null>`NULL` : sortColumns[field].key).as('sort_key')
  const query = db
    .select({ id: products.id, ...(sortKey ? { sortKey } : {}) })
    .from(products)
    .where(and(...conditions))
    .orderBy(...orderBy(request, readsBackward(request)))
  return cursor === null ? query.limit(page.limit).offset(page.offset) : query.limit(page.limit + 1)
}

/** The number of live products matching the filters, as a scalar subquery (an InitPlan, run once). */
function countExpression(filters: ProductFilters): SQL<number> {
  return sql<number>`(SELECT count(*)::int FROM ${products} WHERE ${and(...filterConditions(filters))})`
}

/**
 * The page's rows and its envelope (`results` empty): page numbers need the count, keyset pages drop the extra row
 * that only told whether another page follows.
 */
function pageOf<R extends { id: number; sortKey?: string | null | undefined }>(
  base: PageOrigin,
  request: ProductListRequest,
  fetched: R[],
  total: number | null,
): { rows: R[]; envelope: object } {
  const { page, cursor } = request
  if (cursor === null) return { rows: fetched, envelope: buildPage(base, page, total ?? 0, []) }
  const backward = readsBackward(request)
  const more = fetched.length > page.limit
  const rows = fetched.slice(0, page.limit)
  if (backward) rows.reverse()
  const link = (row: R | undefined, towardsStart: boolean) =>
    row ? selfUrl(base, { cursor: encodeCursor(request.ordering, { value: row.sortKey ?? null, id: row.id, backward: towardsStart }) }) : null
  const hasNext = backward || more
  const hasPrevious = backward ? more : cursor !== 'start'
  return { rows, envelope: { next: hasNext ? link(rows.at(-1), false) : null, previous: hasPrevious ? link(rows[0], true) : null, results: [] } }
}

/**
 * One page of a product list, ids only (the products' own texts are cached and loaded apart, by id): an
 * index-only scan where an index matches. Page numbers add the count; keyset pages omit it.
 */
export async function listProductIds(
  db: Queryable,
  base: PageOrigin,
  request: ProductListRequest,
  countSource: CountSource = (load) => load(),
): Promise<ProductPageFrame> {
  const ids = pageIds(db, request)
  const total =
    request.cursor === null
      ? countSource(() => countOf(db.select({ n: count() }).from(products).where(and(...filterConditions(request.filters)))))
      : null
  const [fetched, counted] = await Promise.all([ids, total])
  const { rows, envelope } = pageOf(base, request, fetched, counted)
  return frame(
    rows.map((r) => r.id),
    envelope,
  )
}

/** A whole product list page: its frame and each product's JSON text, in display order. */
export interface ProductPage {
  list: ProductPageFrame
  items: string[]
}

/**
 * A whole page in ONE statement (one round trip, one snapshot): the page's ids picked as by `listProductIds`, then
 * joined to their products and categories, with the count alongside as a scalar subquery. For reads that need
 * every product's text anyway (the cache off, or bypassed).
 */
export async function listProducts(db: Queryable, base: PageOrigin, request: ProductListRequest): Promise<ProductPage> {
  const ids = pageIds(db, request).as('page')
  const sortKey = (ids as { sortKey?: SQL.Aliased<string | null> }).sortKey ?? sql<null>`NULL`
  const fetched = await db
    .select({ ...productColumns, sortKey, total: request.cursor === null ? countExpression(request.filters) : sql<null>`NULL` })
    .from(ids)
    .innerJoin(products, eq(products.id, ids.id))
    .innerJoin(categories, eq(categories.id, products.categoryId))
    .orderBy(...orderBy(request, readsBackward(request)))
  // An empty page has no row to carry the count: on page 1 it is 0, past it the page is invalid whatever it is.
  const { rows, envelope } = pageOf(base, request, fetched, fetched[0]?.total ?? 0)
  return {
    list: frame(
      rows.map((r) => r.id),
      envelope,
    ),
    items: rows.map((row) => JSON.stringify(serializeProduct(row))),
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
export function refreshProducts(ctx: AppContext, ids: readonly number[]): Promise<void> {
  return ctx.cache.refreshItems(ids.map(String), productFamily, (missing) => productTexts(ctx.db, missing))
}

async function findProduct(db: Queryable, id: number): Promise<ProductOut | undefined> {
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

// --------------------------------------------------------------------------------------------------------- writes

const nameTaken = () => validation({ name: ['category with this name already exists.'] })
const blank = 'This field may not be blank.'

/** DRF's CharField trims whitespace and refuses what is left blank. */
function trimmedName(name: string | undefined, errors: FieldErrors): string | undefined {
  if (name === undefined) return undefined
  const trimmed = name.trim()
  if (!trimmed) errors.name = [blank]
  return trimmed
}

function throwIfInvalid(errors: FieldErrors): void {
  if (Object.keys(errors).length) throw validation(errors)
}

/** Runs a category write, turning a case-insensitive name clash (checked by the unique index) into DRF's 400. */
async function guardCategoryName<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (isUniqueViolation(err, 'categories_name_lower_key')) throw nameTaken()
    throw err
  }
}

export async function createCategory(ctx: AppContext, input: Required<Pick<CategoryInput, 'name'>> & CategoryInput): Promise<CategoryOut> {
  const errors: FieldErrors = {}
  const name = trimmedName(input.name, errors)!
  throwIfInvalid(errors)
  return guardCategoryName(() =>
    ctx.cache.invalidate((mark) =>
      ctx.db.transaction(async (tx) => {
        const [row] = await tx.insert(categories).values({ name, description: input.description ?? '' }).returning()
        await mark(categoryWriteScopes(row!.id, false))
        return serializeCategory(row!)
      }),
    ),
  )
}

export async function updateCategory(ctx: AppContext, id: number, input: CategoryInput): Promise<CategoryOut> {
  const errors: FieldErrors = {}
  const name = trimmedName(input.name, errors)
  throwIfInvalid(errors)
  return guardCategoryName(() =>
    ctx.cache.invalidate((mark) =>
      ctx.db.transaction(async (tx) => {
        const [old] = await tx.select({ name: categories.name }).from(categories).where(eq(categories.id, id)).for('update')
        if (!old) throw notFound()
        await mark(categoryWriteScopes(id, name !== undefined && name !== old.name))
        const [row] = await tx
          .update(categories)
          .set({
            ...(name !== undefined ? { name } : {}),
            ...(input.description !== undefined ? { description: input.description } : {}),
            updatedAt: sql`now()`,
          })
          .where(eq(categories.id, id))
          .returning()
        return serializeCategory(row!)
      }),
    ),
  )
}

export async function deleteCategory(ctx: AppContext, id: number): Promise<void> {
  try {
    await ctx.cache.invalidate(async (mark) => {
      await mark(categoryWriteScopes(id, false))
      const deleted = await ctx.db.delete(categories).where(eq(categories.id, id)).returning({ id: categories.id })
      if (!deleted.length) throw notFound()
    })
  } catch (err) {
    // The foreign key (ON DELETE RESTRICT) decides, so a product added concurrently cannot be orphaned.
    if (isForeignKeyViolation(err)) throw conflict('Cannot delete a category that still has products.')
    throw err
  }
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
      id >= 1 && id <= 2_147_483_647 && (await db.select({ id: categories.id }).from(categories).where(eq(categories.id, id))).length
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

export async function createProduct(ctx: AppContext, input: ProductInput & { name: string; category_id: number }): Promise<ProductOut> {
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

export async function updateProduct(ctx: AppContext, id: number, input: ProductInput): Promise<ProductOut> {
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
export async function deleteProduct(ctx: AppContext, id: number): Promise<'deleted' | 'retired'> {
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

/** An atomic stock adjustment: the condition and the change are one statement, so concurrent ones never go below 0. */
export async function adjustStock(ctx: AppContext, id: number, delta: number): Promise<ProductOut> {
  const product = await ctx.cache.invalidate((mark) =>
    ctx.db.transaction(async (tx) => {
      const [row] = await tx
        .update(products)
        .set({ stock: sql`${products.stock} + ${delta}`, updatedAt: sql`now()` })
        .where(
          and(
            eq(products.id, id),
            sql`${products.isActive}`,
            sql`${products.stock}::bigint + ${delta} BETWEEN 0 AND 2147483647`,
          ),
        )
        .returning({ categoryId: products.categoryId, stock: products.stock })
      if (row) {
        await mark(stockChangeScopes([{ id, categoryId: row.categoryId, before: row.stock - delta, after: row.stock }]))
        return getProduct(tx, id)
      }
      const current = await findProduct(tx, id)
      if (!current) throw notFound()
      if (current.stock + delta < 0) {
        throw conflict(`Not enough stock: ${current.stock} left, cannot remove ${-delta}.`, { stock: current.stock })
      }
      throw new ApiError(400, { delta: ['Ensure the resulting stock is less than or equal to 2147483647.'] })
    }),
  )
  await refreshProducts(ctx, [id])
  return product
}
