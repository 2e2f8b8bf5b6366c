import { Type, type Static } from '@fastify/type-provider-typebox'
import { Money, PG_INT_MAX } from '../http/schemas.js'

const Quantity = Type.Integer({ minimum: 1, maximum: PG_INT_MAX })

export const CartItemSchema = Type.Object({
  id: Type.Integer(),
  product: Type.Object({
    id: Type.Integer(),
    name: Type.String(),
    price: Money,
    stock: Type.Integer(),
    in_stock: Type.Boolean(),
  }),
  quantity: Type.Integer(),
  subtotal: Money,
})

export const CartSchema = Type.Object({
  items: Type.Array(CartItemSchema),
  item_count: Type.Integer({ description: 'sum of the quantities' }),
  total: Money,
})
export type CartOut = Static<typeof CartSchema>

export const AddItemBody = Type.Object({
  product_id: Type.Integer(),
  quantity: Type.Optional(Type.Integer({ minimum: 1, maximum: PG_INT_MAX, default: 1 })),
})

export const UpdateItemBody = Type.Object({ quantity: Quantity })
