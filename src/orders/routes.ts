import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { VersionedCache } from '../cache/index.js'
import type { Db } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'
import { currentUser } from '../auth/guard.js'
import { emptyAddress } from '../db/schema.js'
import { fieldError } from '../http/errors.js'
import { buildPage, pageRequest } from '../http/pagination.js'
import { Detail, IdParams, Paginated, bearer as security } from '../http/schemas.js'
import { OrderListQuery, OrderSchema, PlaceOrderBody, StatusBody, StockConflict } from './schemas.js'
import { MAX_IDEMPOTENCY_KEY_LENGTH, placeOrder } from './placing.js'
import { getOrder, listOrders } from './reading.js'
import { cancelOrder, changeStatus } from './status.js'

const tags = ['orders']
const errors = { 401: Detail, 403: Detail, 404: Detail, 409: Detail }

const IDEMPOTENCY_HEADER = 'Idempotency-Key'

function idempotencyKey(header: string | string[] | undefined): string | undefined {
  if (header === undefined) return undefined
  const key = Array.isArray(header) ? header.join(',') : header
  if (!key.trim()) throw fieldError(IDEMPOTENCY_HEADER, 'This field may not be blank.')
  if (key.length > MAX_IDEMPOTENCY_KEY_LENGTH) {
    throw fieldError(IDEMPOTENCY_HEADER, `Ensure this field has no more than ${MAX_IDEMPOTENCY_KEY_LENGTH} characters.`)
  }
  return key
}

export const ordersRoutes: FastifyPluginAsyncTypebox<{ ctx: { db: Db; cache: VersionedCache; pubsub: PubSub } }> = async (app, { ctx }) => {
  // Authentication runs before validation, so an anonymous or non-staff request is refused whatever its body.
  const user = { onRequest: app.guards.user }
  const staff = { onRequest: app.guards.staff }

  app.post(
    '/orders',
    {
      ...user,
      // Every field is optional, so a client may send no body at all.
      preValidation: async (request) => {
        if (request.body === undefined || request.body === null) request.body = {}
      },
      schema: {
        tags,
        security,
        operationId: 'placeOrder',
        summary: 'Place an order from your cart',
        description:
          'All or nothing: stock is decremented only if every line has enough, prices and names are snapshotted and ' +
          'the cart is emptied. An empty cart is 400 `{"non_field_errors": ["Your cart is empty."]}`; short stock is ' +
          `409 listing every short line. With an \`${IDEMPOTENCY_HEADER}\` header (up to 255 characters) a retry returns ` +
          'the order placed first (201, header `Idempotent-Replayed: true`); the same key with another cart or ' +
          'address is 409.',
        headers: {
          type: 'object',
          properties: { 'idempotency-key': { type: 'string', description: 'unique per order attempt, up to 255 characters' } },
        },
        body: PlaceOrderBody,
        response: { 201: OrderSchema, ...errors, 409: StockConflict },
      },
    },
    async (request, reply) => {
      const address = request.body?.shipping_address
      const { order, replayed } = await placeOrder(ctx, currentUser(request).id, {
        shippingAddress: address && { ...emptyAddress, ...address },
        idempotencyKey: idempotencyKey(request.headers['idempotency-key']),
      })
      if (replayed) reply.header('idempotent-replayed', 'true')
      return reply.code(201).send(order)
    },
  )

  app.get(
    '/orders',
    {
      ...user,
      schema: {
        tags,
        security,
        operationId: 'listOrders',
        summary: 'Your orders, newest first (staff: everyone’s, filterable by user)',
        querystring: OrderListQuery,
        response: { 200: Paginated(OrderSchema), ...errors },
      },
    },
    async (request) => {
      const page = pageRequest(request.query)
      const { count, results } = await listOrders(ctx.db, currentUser(request), request.query, page)
      return buildPage(request, page, count, results)
    },
  )

  app.get(
    '/orders/:id',
    { ...user, schema: { tags, security, operationId: 'getOrder', summary: 'One order', params: IdParams, response: { 200: OrderSchema, ...errors } } },
    async (request) => getOrder(ctx.db, currentUser(request), request.params.id),
  )

  app.patch(
    '/orders/:id/status',
    {
      ...staff,
      schema: {
        tags,
        security,
        operationId: 'changeOrderStatus',
        summary: 'Move an order along pending → shipped → delivered (staff)',
        description: '`cancelled` is accepted while pending and does what POST /orders/{id}/cancel does (restocks).',
        params: IdParams,
        body: StatusBody,
        response: { 200: OrderSchema, ...errors },
      },
    },
    async (request) => changeStatus(ctx, currentUser(request), request.params.id, request.body.status),
  )

  app.post(
    '/orders/:id/cancel',
    {
      ...user,
      schema: {
        tags,
        security,
        operationId: 'cancelOrder',
        summary: 'Cancel a pending order and put its stock back',
        params: IdParams,
        response: { 200: OrderSchema, ...errors },
      },
    },
    async (request) => cancelOrder(ctx, currentUser(request), request.params.id),
  )
}
