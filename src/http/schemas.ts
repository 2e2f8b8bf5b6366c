import { Type, type Static, type TSchema } from '@fastify/type-provider-typebox'
import type { OrderStatus } from '../db/schema.js'
import { DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE } from './pagination.js'

/** The wire pieces every feature's schemas share: ids, money, timestamps, pages, errors, the bearer scheme. */

/** Largest value of a PostgreSQL integer: bigger ids and quantities are refused before they reach SQL. */
export const PG_INT_MAX = 2_147_483_647

/** `/{id}` of a row with an integer key: anything past PG_INT_MAX is "no such row" (404), never a database error. */
export const IdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: PG_INT_MAX }) })

/** `/{id}` of a row with a bigint key (notifications): the bound is what a JSON number holds exactly. */
export const BigIdParams = Type.Object({ id: Type.Integer({ minimum: 1, maximum: Number.MAX_SAFE_INTEGER }) })

/**
 * An amount of money: decimal text with two places, never negative (prices, and what multiplies or sums them; the
 * tables' checks keep every one at zero or more). `example` is OpenAPI 3.0's keyword: @fastify/swagger turns
 * `examples` into it, but not inside an `anyOf` (the product list's two page shapes), where 3.0 refuses `examples`.
 */
export const Money = Type.String({ pattern: '^\\d+\\.\\d{2}$', example: '19.99' })

export const Timestamp = Type.String({ format: 'date-time' })

/** Where an order stands: in orders, in the notifications of its moves, in the staff's figures. */
export const OrderStatusSchema = Type.Union([Type.Literal('pending'), Type.Literal('shipped'), Type.Literal('delivered'), Type.Literal('cancelled')])

// The schema's literals and the table's statuses are one list.
const sameStatuses: [Static<typeof OrderStatusSchema>, OrderStatus] extends [OrderStatus, Static<typeof OrderStatusSchema>] ? true : never = true
void sameStatuses

/** DRF's error body. */
export const Detail = Type.Object({ detail: Type.String(), code: Type.Optional(Type.String()) })

/**
 * A 400 as DRF writes it: each field's messages (an object field's own fields nested the same way, what belongs to
 * no field under `non_field_errors`), or one `detail` for a body that is not JSON at all. Every route that reads a
 * body or a query string answers with it (app.ts adds it to each such route's document).
 */
export const BadRequest = Type.Union([
  Detail,
  Type.Object(
    {},
    {
      additionalProperties: Type.Union([Type.Array(Type.String()), Type.Object({}, { additionalProperties: true })]),
      description: 'Field errors: `{"field": ["message"]}`, nested for nested fields',
      example: { price: ['Ensure this value is greater than or equal to 0.'], address: { city: ['This field may not be blank.'] } },
    },
  ),
])

/** `page` and `page_size` are read leniently, as DRF does: a bad page is 404 "Invalid page.", a bad size the default. */
export const PageQuery = {
  page: Type.Optional(Type.String({ description: '1-based page number', examples: ['1'] })),
  page_size: Type.Optional(Type.String({ description: `items per page (default ${DEFAULT_PAGE_SIZE}, max ${MAX_PAGE_SIZE})` })),
}

export const Paginated = <T extends TSchema>(item: T) =>
  Type.Object({
    count: Type.Integer(),
    next: Type.Union([Type.String(), Type.Null()]),
    previous: Type.Union([Type.String(), Type.Null()]),
    results: Type.Array(item),
  })

/** A route's `security`: an access token in `Authorization: Bearer` (the scheme app.ts declares). */
export const bearer = [{ bearerAuth: [] }]
