import { Type, type Static } from '@fastify/type-provider-typebox'
import { orderStatuses } from '../db/schema.js'
import { AddressSchema } from '../auth/schemas.js'
import { Money, OrderStatusSchema, PageQuery, Timestamp } from '../http/schemas.js'

export const OrderSchema = Type.Object({
  id: Type.Integer(),
  user_id: Type.Integer(),
  status: OrderStatusSchema,
  total_price: Money,
  items: Type.Array(
    Type.Object({
      product_id: Type.Integer(),
      product_name: Type.String(),
      unit_price: Money,
      quantity: Type.Integer(),
      subtotal: Money,
    }),
  ),
  shipping_address: AddressSchema,
  status_history: Type.Array(Type.Object({ status: OrderStatusSchema, at: Timestamp })),
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type OrderOut = Static<typeof OrderSchema>

const required = (max: number) => Type.String({ minLength: 1, maxLength: max })
const optional = (max: number) => Type.Optional(Type.String({ maxLength: max, default: '' }))

/** The profile's address shape; a parcel needs a street, a city, a postal code and a country. */
export const ShippingAddress = Type.Object({
  line1: required(255),
  line2: optional(255),
  city: required(100),
  state: optional(100),
  postal_code: required(20),
  country: required(100),
})

export const PlaceOrderBody = Type.Object({
  shipping_address: Type.Optional(ShippingAddress),
})

export const StatusBody = Type.Object({ status: OrderStatusSchema })

export const OrderListQuery = Type.Object({
  ...PageQuery,
  status: Type.Optional(Type.String({ description: `one of ${orderStatuses.join(', ')}` })),
  user: Type.Optional(Type.String({ description: 'a user id (staff only; ignored for others)' })),
})

/** 409 of POST /orders: `items` lists every short line when stock is missing; other conflicts carry `detail` only. */
export const StockConflict = Type.Object({
  detail: Type.String(),
  items: Type.Optional(Type.Array(Type.Object({ product_id: Type.Integer(), requested: Type.Integer(), available: Type.Integer() }))),
})
