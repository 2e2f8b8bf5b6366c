import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Db } from '../db/index.js'
import { currentUser } from '../auth/guard.js'
import { Detail, IdParams, bearer as security } from '../http/schemas.js'
import { AddItemBody, CartSchema, UpdateItemBody } from './schemas.js'
import * as cart from './service.js'

const tags = ['cart']
const errors = { 401: Detail, 404: Detail }

export const cartRoutes: FastifyPluginAsyncTypebox<{ ctx: { db: Db } }> = async (app, { ctx }) => {
  // Authentication before validation: an anonymous request is 401 whatever its body.
  app.addHook('onRequest', app.guards.user)

  app.get('/cart', { schema: { tags, security, operationId: 'getCart', summary: 'Your cart', response: { 200: CartSchema, ...errors } } }, async (request) =>
    cart.getCart(ctx.db, currentUser(request).id),
  )

  app.delete(
    '/cart',
    { schema: { tags, security, operationId: 'clearCart', summary: 'Empty your cart', response: { ...errors } } },
    async (request, reply) => {
      await cart.clearCart(ctx.db, currentUser(request).id)
      return reply.code(204).send(undefined as never)
    },
  )

  app.post(
    '/cart/items',
    {
      schema: {
        tags,
        security,
        operationId: 'addCartItem',
        summary: 'Add a product (adds to the quantity of a product already in the cart)',
        body: AddItemBody,
        response: { 201: CartSchema, ...errors },
      },
    },
    async (request, reply) => {
      const userId = currentUser(request).id
      return reply.code(201).send(await cart.addItem(ctx.db, userId, request.body.product_id, request.body.quantity ?? 1))
    },
  )

  app.patch(
    '/cart/items/:id',
    {
      schema: {
        tags,
        security,
        operationId: 'updateCartItem',
        summary: 'Change the quantity of a line',
        params: IdParams,
        body: UpdateItemBody,
        response: { 200: CartSchema, ...errors },
      },
    },
    async (request) => {
      const userId = currentUser(request).id
      await cart.setItemQuantity(ctx.db, userId, request.params.id, request.body.quantity)
      return cart.getCart(ctx.db, userId)
    },
  )

  app.delete(
    '/cart/items/:id',
    { schema: { tags, security, operationId: 'removeCartItem', summary: 'Remove a line', params: IdParams, response: { 200: CartSchema, ...errors } } },
    async (request) => {
      const userId = currentUser(request).id
      await cart.removeItem(ctx.db, userId, request.params.id)
      return cart.getCart(ctx.db, userId)
    },
  )
}
