import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Queryable } from '../db/index.js'
import { LOW_STOCK_MAX, orderStatuses } from '../db/schema.js'
import { fieldError } from '../http/errors.js'
import { Detail, Money, Timestamp, bearer as security } from '../http/schemas.js'
import { ProductSchema } from '../catalogue/schemas.js'
import { orderStats, stockStats } from './service.js'

const tags = ['stats']
const errors = { 401: Detail, 403: Detail }

/** An overview, not a report: the window's cost grows with the orders in it, so it is bounded. */
export const MAX_WINDOW_DAYS = 31
const DAY_MS = 86_400_000

const OrderStatsSchema = Type.Object({
  since: Timestamp,
  placed: Type.Integer({ description: 'orders placed since `since`' }),
  revenue: { ...Money, description: 'their total, cancelled orders excepted' },
  by_status: Type.Object(Object.fromEntries(orderStatuses.map((s) => [s, Type.Integer()]))),
  awaiting_shipment: Type.Integer({ description: 'every pending order, whenever it was placed' }),
})

const StockStatsSchema = Type.Object({
  threshold: Type.Integer(),
  sold_out: Type.Integer({ description: 'live products with no stock' }),
  low_stock: Type.Integer({ description: 'live products with 1 to `threshold` units' }),
  products: Type.Array(ProductSchema, { description: 'the lowest-stocked of them, sold out first' }),
})

/** The staff overview's figures; each is an index range scan, cheap at any catalogue and order count. */
export const statsRoutes: FastifyPluginAsyncTypebox<{ ctx: { db: Queryable } }> = async (app, { ctx }) => {
  const staff = { onRequest: app.guards.staff }

  app.get(
    '/stats/orders',
    {
      ...staff,
      schema: {
        tags,
        security,
        operationId: 'getOrderStats',
        summary: 'Orders placed since a moment, by current status, with their revenue (staff)',
        querystring: Type.Object({
          since: Type.Optional(
            Type.String({
              format: 'date-time',
              description: `start of the window, with a time zone; at most ${MAX_WINDOW_DAYS} days back (default: start of today, UTC)`,
            }),
          ),
        }),
        response: { 200: OrderStatsSchema, ...errors },
      },
    },
    async (request) => {
      const now = Date.now()
      const since = request.query.since ? new Date(request.query.since) : new Date(now - (now % DAY_MS))
      // The format admits what Date cannot hold (a leap second): that is a bad value, not a server error.
      if (Number.isNaN(since.getTime())) throw fieldError('since', 'Enter a valid date-time.')
      if (since.getTime() < now - MAX_WINDOW_DAYS * DAY_MS) {
        throw fieldError('since', `Ensure this value is within the last ${MAX_WINDOW_DAYS} days.`)
      }
      return orderStats(ctx.db, since)
    },
  )

  app.get(
    '/stats/stock',
    {
      ...staff,
      schema: {
        tags,
        security,
        operationId: 'getStockStats',
        summary: 'Sold-out and low-stock products, lowest stock first (staff)',
        querystring: Type.Object({
          threshold: Type.Integer({ minimum: 0, maximum: LOW_STOCK_MAX, default: 5, description: 'low means at most this many units' }),
          limit: Type.Integer({ minimum: 1, maximum: 100, default: 10, description: 'how many products to list' }),
        }),
        response: { 200: StockStatsSchema, ...errors },
      },
    },
    async (request) => stockStats(ctx.db, request.query.threshold, request.query.limit),
  )
}
