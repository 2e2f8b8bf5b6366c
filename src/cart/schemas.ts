import { Type, type Static } from '@fastify/type-provider-typebox'

/** Largest value of a PostgreSQL integer: bigger ids and quantities are refused before they reach SQL. */
export const PG_INT_MAX = 2_147_483_647

export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: PG_INT_MAX }) })

export const Money = Type.String({ pattern: '^-?\\d+\\.\\d{2}$', examples: ['19.99'] })

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
