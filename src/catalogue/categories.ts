import { eq, sql } from 'drizzle-orm'
import type { VersionedCache } from '../cache/index.js'
import type { Db, Queryable } from '../db/index.js'
import { categories } from '../db/schema.js'
import { isForeignKeyViolation, isUniqueViolation } from '../db/errors.js'
import { conflict, notFound, validation, type FieldErrors } from '../http/errors.js'
import { throwIfInvalid, trimmedName } from './fields.js'
import { categoryWriteScopes } from './invalidation.js'
import type { CategoryInput, CategoryOut } from './schemas.js'

type CategoryRow = typeof categories.$inferSelect

export function serializeCategory(row: CategoryRow): CategoryOut {
  return {
    id: row.id,
    name: row.name,
    description: row.description,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  }
}

export async function getCategory(db: Queryable, id: number): Promise<CategoryOut> {
  const [row] = await db.select().from(categories).where(eq(categories.id, id))
  if (!row) throw notFound()
  return serializeCategory(row)
}

const nameTaken = () => validation({ name: ['category with this name already exists.'] })

/** Runs a category write, turning a case-insensitive name clash (checked by the unique index) into DRF's 400. */
async function guardCategoryName<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work()
  } catch (err) {
    if (isUniqueViolation(err, 'categories_name_lower_key')) throw nameTaken()
    throw err
  }
}

export async function createCategory(ctx: { db: Db; cache: VersionedCache }, input: Required<Pick<CategoryInput, 'name'>> & CategoryInput): Promise<CategoryOut> {
  const errors: FieldErrors = {}
  const name = trimmedName(input.name, errors)!
  throwIfInvalid(errors)
  return guardCategoryName(() =>
    ctx.cache.invalidate((mark) =>
      ctx.db.transaction(async (tx) => {
        const [row] = await tx.insert(categories).values({ name, description: input.description ?? '' }).returning()
        await mark(categoryWriteScopes(row!.id, false))
        return serializeCategory(row!)
      }),
    ),
  )
}

export async function updateCategory(ctx: { db: Db; cache: VersionedCache }, id: number, input: CategoryInput): Promise<CategoryOut> {
  const errors: FieldErrors = {}
  const name = trimmedName(input.name, errors)
  throwIfInvalid(errors)
  return guardCategoryName(() =>
    ctx.cache.invalidate((mark) =>
      ctx.db.transaction(async (tx) => {
        const [old] = await tx.select({ name: categories.name }).from(categories).where(eq(categories.id, id)).for('update')
        if (!old) throw notFound()
        await mark(categoryWriteScopes(id, name !== undefined && name !== old.name))
        const [row] = await tx
          .update(categories)
          .set({
            ...(name !== undefined ? { name } : {}),
            ...(input.description !== undefined ? { description: input.description } : {}),
            updatedAt: sql`now()`,
          })
          .where(eq(categories.id, id))
          .returning()
        return serializeCategory(row!)
      }),
    ),
  )
}

export async function deleteCategory(ctx: { db: Db; cache: VersionedCache }, id: number): Promise<void> {
  try {
    await ctx.cache.invalidate(async (mark) => {
      await mark(categoryWriteScopes(id, false))
      const deleted = await ctx.db.delete(categories).where(eq(categories.id, id)).returning({ id: categories.id })
      if (!deleted.length) throw notFound()
    })
  } catch (err) {
    // The foreign key (ON DELETE RESTRICT) decides, so a product added concurrently cannot be orphaned.
    if (isForeignKeyViolation(err)) throw conflict('Cannot delete a category that still has products.')
    throw err
  }
}
