import { type SQL, and, asc, count, desc, eq, sql } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { preparedQuery } from '../db/prepared.js'
import { categories, products } from '../db/schema.js'
import { type Page, type PageOrigin, type PageRequest, buildPage, selfUrl } from '../http/pagination.js'
import { serializeCategory } from './categories.js'
import { productColumns, serializeProduct } from './products.js'
import {
  type Ordering,
  type ProductFilters,
  type ProductListRequest,
  encodeCursor,
  isDescending,
  sortField,
} from './query.js'
import { type PageMode, filterConditions, filterShape, filterValues, pageMode } from './shapes.js'
import type { CategoryOut } from './schemas.js'

/** The catalogue's list reads: categories by name, and product pages (page numbers or keysets, filtered and sorted). */

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

/** The shape of a list statement: all its text depends on, so all its name says. */
interface Shape {
  filters: ProductFilters
  ordering: Ordering
  mode: PageMode
}

const shapeOf = (request: ProductListRequest): Shape => ({ filters: request.filters, ordering: request.ordering, mode: pageMode(request) })
const shapeName = (kind: string, shape: Shape) => `${kind}_${shape.mode}_${shape.ordering}_${filterShape(shape.filters)}`

/** Display order; a page read backwards from a cursor is read in the reverse order, then reversed. */
function orderBy({ ordering, mode }: Shape): SQL[] {
  const descending = isDescending(ordering) !== (mode === 'before')
  const direction = descending ? desc : asc
  const field = sortField(ordering)
  // Always tie-break on id, in the same direction, so that one index serves the order and keyset pages are exact.
  return field === 'id' ? [direction(products.id)] : [direction(sortColumns[field].column), direction(products.id)]
}

/** Rows strictly after (or before, going back) a position, as a row comparison a (column, id) index can seek to. */
function keysetCondition({ ordering, mode }: Shape): SQL {
  const op = sql.raw(isDescending(ordering) === (mode === 'before') ? '>' : '<')
  const field = sortField(ordering)
  if (field === 'id') return sql`${products.id} ${op} ${sql.placeholder('id')}`
  const { column, cast } = sortColumns[field]
  return sql`(${column}, ${products.id}) ${op} (${sql.placeholder('value')}${cast}, ${sql.placeholder('id')})`
}

/** The values of a request's placeholders: the filters', the page's size and offset, and a cursor's position. */
function statementValues(request: ProductListRequest): Record<string, unknown> {
  const { page, cursor } = request
  const values: Record<string, unknown> = filterValues(request.filters)
  if (cursor === null) return Object.assign(values, { limit: page.limit, offset: page.offset })
  // A keyset page reads one more row than it shows: that one only tells whether another page follows.
  Object.assign(values, { limit: page.limit + 1 })
  if (cursor !== 'start') Object.assign(values, { id: cursor.id, ...(cursor.value === null ? {} : { value: cursor.value }) })
  return values
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

/**
 * The page's ids in display order (for a cursor page, one more row than the page tells whether another follows),
 * with each row's sort key as exact text for cursors: an index-only scan where an index matches.
 */
function pageIds(db: Queryable, shape: Shape) {
  const conditions = filterConditions(shape.filters)
  const field = sortField(shape.ordering)
  if (shape.mode === 'after' || shape.mode === 'before') conditions.push(keysetCondition(shape))
  // Page numbers need no sort key: the id alone keeps the scan index-only.
  const sortKey = shape.mode === 'page' ? undefined : (field === 'id' ? sql<string | null>`NULL` : sortColumns[field].key).as('sort_key')
  const query = db
    .select({ id: products.id, ...(sortKey ? { sortKey } : {}) })
    .from(products)
    .where(and(...conditions))
    .orderBy(...orderBy(shape))
    .limit(sql.placeholder('limit'))
  return shape.mode === 'page' ? query.offset(sql.placeholder('offset')) : query
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
  const backward = cursor !== 'start' && cursor.backward
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
  const shape = shapeOf(request)
  const values = statementValues(request)
  const ids = preparedQuery(db, shapeName('ids', shape), () => pageIds(db, shape)).execute(values)
  const countStatement = () =>
    preparedQuery(db, `count_${filterShape(request.filters)}`, () =>
      db.select({ n: count() }).from(products).where(and(...filterConditions(request.filters))),
    )
  const total = request.cursor === null ? countSource(() => countOf(countStatement().execute(values))) : null
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
  const shape = shapeOf(request)
  const statement = preparedQuery(db, shapeName('page', shape), () => {
    const ids = pageIds(db, shape).as('page')
    const sortKey = (ids as { sortKey?: SQL.Aliased<string | null> }).sortKey ?? sql<null>`NULL`
    return db
      .select({ ...productColumns, sortKey, total: shape.mode === 'page' ? countExpression(shape.filters) : sql<null>`NULL` })
      .from(ids)
      .innerJoin(products, eq(products.id, ids.id))
      .innerJoin(categories, eq(categories.id, products.categoryId))
      .orderBy(...orderBy(shape))
  })
  const fetched = await statement.execute(statementValues(request))
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
