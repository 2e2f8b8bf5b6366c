import type { FastifyRequest } from 'fastify'
import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { VersionedCache } from '../cache/index.js'
import type { ResponseCache } from '../cache/responses.js'
import type { Config } from '../config/index.js'
import type { Db } from '../db/index.js'
import { type PageOrigin, pageRequest } from '../http/pagination.js'
import { Detail, IdParams, Paginated, bearer } from '../http/schemas.js'
import { ReadLimits } from '../http/readlimits.js'
import { categoryDetailScopes, productDetailScopes, productFamily, productListScopes, scopes } from './invalidation.js'
import { type ProductListRequest, type RawProductQuery, filterKey, parseProductQuery } from './query.js'
import {
  CategoryBody,
  CategoryListQuery,
  CategoryPatch,
  CategorySchema,
  CursorPage,
  ProductBody,
  ProductListQuery,
  ProductPatch,
  ProductSchema,
  StockAdjustBody,
} from './schemas.js'
import { createCategory, deleteCategory, getCategory, updateCategory } from './categories.js'
import { type CountSource, listCategories, listProductIds, listProducts } from './lists.js'
import { createProduct, deleteProduct, getProduct, productTexts, updateProduct } from './products.js'
import { adjustStock } from './stock.js'
import { cachedHeaders, conditionalHeaders, notModifiedResponse, sendCached } from './respond.js'

const NoContent = Type.Null({ description: 'No content' })
const errors = { 401: Detail, 403: Detail, 404: Detail }
/** A cached read documents the `If-None-Match` it honours, and its 304 answer. */
const cached = { headers: conditionalHeaders }
const notModified = { 304: notModifiedResponse }

/**
 * A list page's links are absolute, so its cache key and links both come from the scheme, host and route path plus
 * the canonical query string, never from the raw request (stray parameters must not leak into a shared answer).
 */
function canonicalOrigin(request: FastifyRequest, query: URLSearchParams): { key: string; origin: PageOrigin } {
  const qs = query.toString()
  const url = qs ? `${request.routeOptions.url}?${qs}` : (request.routeOptions.url ?? '/')
  return { key: `${request.protocol}://${request.host}${url}`, origin: { url, protocol: request.protocol, host: request.host } }
}

/** What a product list request resolves to, before any I/O: all of it follows from the raw URL (and host). */
interface ListPlan {
  list: ProductListRequest
  origin: PageOrigin
  key: string
  scopes: string[]
  countKey: string
  countScopes: string[]
}

/** Distinct raw list URLs remembered; past that the oldest go first (a crawler's long tail only costs re-parsing). */
const MAX_PLANS = 2_000

export const catalogueRoutes: FastifyPluginAsyncTypebox<{ ctx: { db: Db; cache: VersionedCache; responses: ResponseCache; config: Config } }> = async (app, { ctx }) => {
  const staff = { onRequest: app.guards.staff }
  const json = (value: unknown) => JSON.stringify(value)
  // Every loader below runs only on a cache miss: that is what is charged and, for lists, queued.
  const limits = new ReadLimits(ctx.config)

  // ------------------------------------------------------------------------------------------------- categories
  const categoryTags = ['catalogue: categories']

  app.get(
    '/categories',
    {
      schema: {
        tags: categoryTags,
        operationId: 'listCategories',
        summary: 'List categories, ordered by name',
        querystring: CategoryListQuery,
        ...cached,
        response: { 200: { ...Paginated(CategorySchema), headers: cachedHeaders }, ...notModified, 404: Detail },
      },
    },
    async (request, reply) => {
      const page = pageRequest(request.query)
      const query = new URLSearchParams()
      if (page.page !== 1) query.set('page', String(page.page))
      if (page.pageSize !== 10) query.set('page_size', String(page.pageSize))
      const { key, origin } = canonicalOrigin(request, query)
      const read = await ctx.responses.read(
        `cl:${key}`,
        [scopes.categoryLists],
        limits.miss(request, async () => json(await listCategories(ctx.db, origin, page))),
      )
      return sendCached(request, reply, read)
    },
  )

  app.get(
    '/categories/:id',
    {
      schema: { tags: categoryTags, operationId: 'getCategory', summary: 'A category', params: IdParams, ...cached,
        response: { 200: { ...CategorySchema, headers: cachedHeaders }, ...notModified, 404: Detail } },
    },
    async (request, reply) => {
      const { id } = request.params
      const read = await ctx.responses.read(
        `c:${id}`,
        categoryDetailScopes(id),
        limits.miss(request, async () => json(await getCategory(ctx.db, id))),
      )
      return sendCached(request, reply, read)
    },
  )

  app.post(
    '/categories',
    {
      ...staff,
      schema: { tags: categoryTags, operationId: 'createCategory', summary: 'Create a category (staff)', security: bearer, body: CategoryBody, response: { 201: CategorySchema, ...errors } },
    },
    async (request, reply) => reply.code(201).send(await createCategory(ctx, request.body)),
  )

  app.put(
    '/categories/:id',
    {
      ...staff,
      schema: { tags: categoryTags, operationId: 'replaceCategory', summary: 'Replace a category (staff)', security: bearer, params: IdParams, body: CategoryBody, response: { 200: CategorySchema, ...errors } },
    },
    async (request) => updateCategory(ctx, request.params.id, request.body),
  )

  app.patch(
    '/categories/:id',
    {
      ...staff,
      schema: { tags: categoryTags, operationId: 'updateCategory', summary: 'Update a category (staff)', security: bearer, params: IdParams, body: CategoryPatch, response: { 200: CategorySchema, ...errors } },
    },
    async (request) => updateCategory(ctx, request.params.id, request.body),
  )

  app.delete(
    '/categories/:id',
    {
      ...staff,
      schema: {
        tags: categoryTags,
        operationId: 'deleteCategory',
        summary: 'Delete a category (staff); 409 while it has products',
        security: bearer,
        params: IdParams,
        response: { 204: NoContent, ...errors, 409: Detail },
      },
    },
    async (request, reply) => {
      await deleteCategory(ctx, request.params.id)
      return reply.code(204).send(null)
    },
  )

  // --------------------------------------------------------------------------------------------------- products
  const productTags = ['catalogue: products']

  // A cached list hit is one cache round trip: remembering each raw URL's parsed, canonical form (a pure function
  // of it) spares the hit the parsing and normalization. Invalid queries throw and are never remembered.
  const plans = new Map<string, ListPlan>()
  const listPlan = (request: FastifyRequest, query: RawProductQuery): ListPlan => {
    const raw = `${request.protocol}://${request.host}${request.url}`
    let plan = plans.get(raw)
    if (plan) return plan
    const list = parseProductQuery(query)
    const { key, origin } = canonicalOrigin(request, list.canonical)
    plan = {
      list,
      origin,
      key: `pl:${key}`,
      scopes: productListScopes(list.filters, list.ordering),
      countKey: `pc:${filterKey(list)}`,
      countScopes: productListScopes(list.filters, null),
    }
    if (plans.size >= MAX_PLANS) plans.delete(plans.keys().next().value!)
    plans.set(raw, plan)
    return plan
  }

  app.get(
    '/products',
    {
      schema: {
        tags: productTags,
        operationId: 'listProducts',
        summary: 'List products',
        description:
          'Filters combine. Page-number pagination by default; pass `cursor` (empty for the first page) for keyset pagination, ' +
          'which omits `count` and stays fast at any depth.',
        querystring: ProductListQuery,
        ...cached,
        response: {
          200: { anyOf: [Paginated(ProductSchema), CursorPage(ProductSchema)], headers: cachedHeaders },
          ...notModified,
          404: Detail,
        },
      },
    },
    async (request, reply) => {
      const plan = listPlan(request, request.query)
      // Counts are cached apart (keyed by filters only), so pages of one filter share theirs; a count's scopes are
      // a subset of its pages' scopes, so whatever makes a count stale makes its pages stale too.
      const counted: CountSource = async (load) => {
        const read = await ctx.cache.read(plan.countKey, plan.countScopes, async () => String(await load()))
        return Number(read.body)
      }
      const read = await ctx.responses.readList(plan.key, plan.scopes, productFamily, {
        list: limits.miss(request, () => listProductIds(ctx.db, plan.origin, plan.list, counted), true),
        items: (ids) => productTexts(ctx.db, ids),
        whole: limits.miss(request, () => listProducts(ctx.db, plan.origin, plan.list), true),
      })
      return sendCached(request, reply, read)
    },
  )

  app.get(
    '/products/:id',
    {
      schema: { tags: productTags, operationId: 'getProduct', summary: 'A product', params: IdParams, ...cached,
        response: { 200: { ...ProductSchema, headers: cachedHeaders }, ...notModified, 404: Detail } },
    },
    async (request, reply) => {
      const { id } = request.params
      const read = await ctx.responses.read(
        `p:${id}`,
        productDetailScopes(id),
        limits.miss(request, async () => json(await getProduct(ctx.db, id))),
      )
      return sendCached(request, reply, read)
    },
  )

  app.post(
    '/products',
    {
      ...staff,
      schema: { tags: productTags, operationId: 'createProduct', summary: 'Create a product (staff)', security: bearer, body: ProductBody, response: { 201: ProductSchema, ...errors } },
    },
    async (request, reply) => reply.code(201).send(await createProduct(ctx, request.body)),
  )

  app.put(
    '/products/:id',
    {
      ...staff,
      schema: { tags: productTags, operationId: 'replaceProduct', summary: 'Replace a product (staff)', security: bearer, params: IdParams, body: ProductBody, response: { 200: ProductSchema, ...errors } },
    },
    async (request) => updateProduct(ctx, request.params.id, request.body),
  )

  app.patch(
    '/products/:id',
    {
      ...staff,
      schema: { tags: productTags, operationId: 'updateProduct', summary: 'Update a product (staff)', security: bearer, params: IdParams, body: ProductPatch, response: { 200: ProductSchema, ...errors } },
    },
    async (request) => updateProduct(ctx, request.params.id, request.body),
  )

  app.delete(
    '/products/:id',
    {
      ...staff,
      schema: {
        tags: productTags,
        operationId: 'deleteProduct',
        summary: 'Delete a product (staff); one that appears in orders is retired instead',
        security: bearer,
        params: IdParams,
        response: { 204: NoContent, ...errors },
      },
    },
    async (request, reply) => {
      await deleteProduct(ctx, request.params.id)
      return reply.code(204).send(null)
    },
  )

  app.post(
    '/products/:id/stock',
    {
      ...staff,
      schema: {
        tags: productTags,
        operationId: 'adjustStock',
        summary: 'Adjust stock atomically (staff); 409 if it would go below zero',
        security: bearer,
        params: IdParams,
        body: StockAdjustBody,
        response: { 200: ProductSchema, ...errors, 409: Detail },
      },
    },
    async (request) => adjustStock(ctx, request.params.id, request.body.delta),
  )
}
