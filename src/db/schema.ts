import { sql } from 'drizzle-orm'
import {
  bigint,
  boolean,
  check,
  index,
  integer,
  jsonb,
  numeric,
  pgTable,
  text,
  timestamp,
  uniqueIndex,
  uuid,
  varchar,
} from 'drizzle-orm/pg-core'

const createdAt = () => timestamp('created_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()
const updatedAt = () => timestamp('updated_at', { withTimezone: true, mode: 'date' }).notNull().defaultNow()

export interface Address {
  line1: string
  line2: string
  city: string
  state: string
  postal_code: string
  country: string
}

export const emptyAddress: Address = { line1: '', line2: '', city: '', state: '', postal_code: '', country: '' }

export const users = pgTable(
  'users',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    email: varchar('email', { length: 254 }).notNull(),
    password: text('password').notNull(),
    firstName: varchar('first_name', { length: 150 }).notNull().default(''),
    lastName: varchar('last_name', { length: 150 }).notNull().default(''),
    phone: varchar('phone', { length: 32 }).notNull().default(''),
    address: jsonb('address').$type<Address>().notNull().default(emptyAddress),
    isStaff: boolean('is_staff').notNull().default(false),
    isActive: boolean('is_active').notNull().default(true),
    dateJoined: timestamp('date_joined', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
    /** Bumped by logout, password change, sessions revoke, deactivation and staff change; access tokens carry it (instant revocation). */
    tokenVersion: integer('token_version').notNull().default(0),
    /**
     * Bumped by what ends every session (password change, sessions revoke, deactivation, staff change) but not by a
     * plain logout; refresh tokens carry it, so one issued before such a revocation can never be refreshed.
     */
    sessionVersion: integer('session_version').notNull().default(0),
  },
  (t) => [uniqueIndex('users_email_lower_key').on(sql`lower(${t.email})`)],
)

/** SimpleJWT's OutstandingToken + BlacklistedToken in one row: a refresh token is valid only while its row is unrevoked. */
export const refreshTokens = pgTable(
  'refresh_tokens',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    jti: uuid('jti').notNull(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    createdAt: createdAt(),
    expiresAt: timestamp('expires_at', { withTimezone: true, mode: 'date' }).notNull(),
    blacklistedAt: timestamp('blacklisted_at', { withTimezone: true, mode: 'date' }),
  },
  (t) => [
    uniqueIndex('refresh_tokens_jti_key').on(t.jti),
    index('refresh_tokens_user_active_idx').on(t.userId).where(sql`${t.blacklistedAt} IS NULL`),
    index('refresh_tokens_expires_idx').on(t.expiresAt),
  ],
)

export const categories = pgTable(
  'categories',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    name: varchar('name', { length: 100 }).notNull(),
    description: text('description').notNull().default(''),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [uniqueIndex('categories_name_lower_key').on(sql`lower(${t.name})`)],
)

/**
 * The highest stock the staff overview calls low: the low-stock index holds only the products at or below it, so
 * it stays small and the stock changes of well-stocked products never touch it.
 */
export const LOW_STOCK_MAX = 20

export const products = pgTable(
  'products',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    name: varchar('name', { length: 200 }).notNull(),
    description: text('description').notNull().default(''),
    price: numeric('price', { precision: 12, scale: 2 }).notNull(),
    stock: integer('stock').notNull().default(0),
    categoryId: integer('category_id')
      .notNull()
      .references(() => categories.id, { onDelete: 'restrict' }),
    /** false once a product that appears in orders is deleted: hidden from the catalogue, kept for order history. */
    isActive: boolean('is_active').notNull().default(true),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('products_price_non_negative', sql`${t.price} >= 0`),
    check('products_stock_non_negative', sql`${t.stock} >= 0`),
    // Not partial: it also serves the ON DELETE RESTRICT check of categories, which must see retired products too.
    index('products_category_idx').on(t.categoryId, t.id),
    // The list orderings' indexes. The columns after id never change the order (id is unique): they are there so
    // the list filters (category, price, stock) are tested on the index entries, and a filtered page or count is an
    // index-only scan, with no heap fetch for the rows it skips (a category is 1 row in 50, spread over every page).
    // (drizzle has no INCLUDE, so they are key columns: the same scans, slightly wider inner pages.)
    index('products_price_idx').on(t.price, t.id, t.categoryId, t.stock).where(sql`${t.isActive}`),
    index('products_category_price_idx').on(t.categoryId, t.price, t.id, t.stock).where(sql`${t.isActive}`),
    index('products_name_idx').on(t.name, t.id, t.categoryId, t.price, t.stock).where(sql`${t.isActive}`),
    index('products_created_idx').on(t.createdAt, t.id, t.categoryId, t.price, t.stock).where(sql`${t.isActive}`),
    index('products_in_stock_idx').on(t.id).where(sql`${t.isActive} AND ${t.stock} > 0`),
    // Small (few products are sold out) and makes `in_stock=false` pages and counts index-only.
    index('products_out_of_stock_idx').on(t.id).where(sql`${t.isActive} AND ${t.stock} = 0`),
    // The staff overview's low-stock list and counts: a range of this small index, lowest stock first.
    index('products_low_stock_idx')
      .on(t.stock, t.id)
      .where(sql`${t.isActive} AND ${t.stock} <= ${sql.raw(String(LOW_STOCK_MAX))}`),
    index('products_search_trgm_idx')
      .using('gin', sql`(${t.name} || ' ' || ${t.description}) gin_trgm_ops`)
      .where(sql`${t.isActive}`),
  ],
)

export const cartItems = pgTable(
  'cart_items',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    productId: integer('product_id')
      .notNull()
      .references(() => products.id, { onDelete: 'cascade' }),
    quantity: integer('quantity').notNull(),
    createdAt: createdAt(),
  },
  (t) => [
    check('cart_items_quantity_positive', sql`${t.quantity} > 0`),
    uniqueIndex('cart_items_user_product_key').on(t.userId, t.productId),
  ],
)

export const orderStatuses = ['pending', 'shipped', 'delivered', 'cancelled'] as const
export type OrderStatus = (typeof orderStatuses)[number]

export const orders = pgTable(
  'orders',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'restrict' }),
    status: varchar('status', { length: 16 }).$type<OrderStatus>().notNull().default('pending'),
    totalPrice: numeric('total_price', { precision: 12, scale: 2 }).notNull(),
    shippingAddress: jsonb('shipping_address').$type<Address>().notNull(),
    idempotencyKey: varchar('idempotency_key', { length: 255 }),
    /** Fingerprint of the cart the key was first used with: the same key with another cart is a conflict. */
    idempotencyFingerprint: text('idempotency_fingerprint'),
    createdAt: createdAt(),
    updatedAt: updatedAt(),
  },
  (t) => [
    check('orders_status_valid', sql`${t.status} IN ('pending', 'shipped', 'delivered', 'cancelled')`),
    check('orders_total_non_negative', sql`${t.totalPrice} >= 0`),
    uniqueIndex('orders_user_idempotency_key').on(t.userId, t.idempotencyKey),
    index('orders_user_idx').on(t.userId, t.id),
    index('orders_status_idx').on(t.status, t.id),
    // The staff overview's "placed since": an index-only range scan over the window, whatever the table's size.
    index('orders_created_idx').on(t.createdAt, t.status, t.totalPrice),
  ],
)

export const orderItems = pgTable(
  'order_items',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    orderId: integer('order_id')
      .notNull()
      .references(() => orders.id, { onDelete: 'cascade' }),
    productId: integer('product_id')
      .notNull()
      .references(() => products.id, { onDelete: 'restrict' }),
    productName: varchar('product_name', { length: 200 }).notNull(),
    unitPrice: numeric('unit_price', { precision: 12, scale: 2 }).notNull(),
    quantity: integer('quantity').notNull(),
  },
  (t) => [
    check('order_items_quantity_positive', sql`${t.quantity} > 0`),
    index('order_items_order_idx').on(t.orderId),
    index('order_items_product_idx').on(t.productId),
  ],
)

export const orderStatusHistory = pgTable(
  'order_status_history',
  {
    id: integer('id').primaryKey().generatedByDefaultAsIdentity(),
    orderId: integer('order_id')
      .notNull()
      .references(() => orders.id, { onDelete: 'cascade' }),
    status: varchar('status', { length: 16 }).$type<OrderStatus>().notNull(),
    at: timestamp('at', { withTimezone: true, mode: 'date' }).notNull().defaultNow(),
  },
  (t) => [index('order_status_history_order_idx').on(t.orderId, t.id)],
)

export const notifications = pgTable(
  'notifications',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity(),
    userId: integer('user_id')
      .notNull()
      .references(() => users.id, { onDelete: 'cascade' }),
    type: varchar('type', { length: 64 }).notNull().default('order.status_changed'),
    orderId: integer('order_id')
      .notNull()
      .references(() => orders.id, { onDelete: 'cascade' }),
    status: varchar('status', { length: 16 }).$type<OrderStatus>().notNull(),
    previousStatus: varchar('previous_status', { length: 16 }).$type<OrderStatus>(),
    message: text('message').notNull(),
    read: boolean('read').notNull().default(false),
    createdAt: createdAt(),
  },
  (t) => [
    index('notifications_user_idx').on(t.userId, t.id),
    index('notifications_user_unread_idx').on(t.userId, t.id).where(sql`NOT ${t.read}`),
  ],
)
