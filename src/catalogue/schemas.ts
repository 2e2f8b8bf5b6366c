import { Type, type Static } from '@fastify/type-provider-typebox'
import { Money, PG_INT_MAX, PageQuery, Timestamp } from '../http/schemas.js'
import { orderings } from './query.js'

export const CategorySchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type CategoryOut = Static<typeof CategorySchema>

export const ProductSchema = Type.Object({
  id: Type.Integer(),
  name: Type.String(),
  description: Type.String(),
  price: Money,
  stock: Type.Integer(),
  in_stock: Type.Boolean(),
  category: Type.Object({ id: Type.Integer(), name: Type.String() }),
  created_at: Timestamp,
  updated_at: Timestamp,
})
export type ProductOut = Static<typeof ProductSchema>

/** Keyset pages: the page-number shape without `count` (counting a million rows is what keyset paging avoids). */
export const CursorPage = <T extends ReturnType<typeof Type.Object>>(item: T) =>
  Type.Object({
    next: Type.Union([Type.String(), Type.Null()]),
    previous: Type.Union([Type.String(), Type.Null()]),
    results: Type.Array(item),
  })

// Names are trimmed and checked for blankness in the service, where DRF's messages are produced.
const categoryFields = {
  name: Type.String({ maxLength: 100 }),
  description: Type.Optional(Type.String({ maxLength: 10_000 })),
}
export const CategoryBody = Type.Object(categoryFields)
export const CategoryPatch = Type.Partial(Type.Object(categoryFields))
export type CategoryInput = Static<typeof CategoryPatch>

// No JSON type on price: a string or a number is accepted and DRF's DecimalField messages come from the service.
const price = Type.Unsafe<string | number>({
  description: 'decimal ≥ 0 with at most 2 places and 10 integer digits, as a string ("19.99") or a number',
  examples: ['19.99'],
  // Applies to a string only; DRF's DecimalField messages for anything shorter come from the service.
  maxLength: 64,
})
const productFields = {
  name: Type.String({ maxLength: 200 }),
  description: Type.Optional(Type.String({ maxLength: 100_000 })),
  price,
  stock: Type.Optional(Type.Integer({ minimum: 0, maximum: PG_INT_MAX })),
  category_id: Type.Integer(),
}
export const ProductBody = Type.Object(productFields)
export const ProductPatch = Type.Partial(Type.Object(productFields))
export type ProductInput = Static<typeof ProductPatch>

export const StockAdjustBody = Type.Object({
  delta: Type.Integer({ minimum: -PG_INT_MAX, maximum: PG_INT_MAX, description: 'units to add (negative to remove)' }),
})

export const ProductListQuery = Type.Object({
  category: Type.Optional(
    Type.Array(Type.String(), { description: 'category id; repeat the parameter or separate ids with commas for several' }),
  ),
  min_price: Type.Optional(Type.String({ description: 'inclusive lower bound on price' })),
  max_price: Type.Optional(Type.String({ description: 'inclusive upper bound on price' })),
  in_stock: Type.Optional(Type.String({ description: 'true: stock > 0; false: stock = 0', examples: ['true'] })),
  search: Type.Optional(Type.String({ description: 'every whitespace-separated term must appear in the name or description' })),
  ordering: Type.Optional(Type.String({ description: `one of ${orderings.join(', ')} (default id)` })),
  cursor: Type.Optional(
    Type.String({ description: 'keyset pagination: empty for the first page, then the cursor from `next`/`previous`' }),
  ),
  ...PageQuery,
})

export const CategoryListQuery = Type.Object({ ...PageQuery })
