import type { SQL } from 'drizzle-orm'
import type { Queryable } from './index.js'

/** Helpers for statements written in SQL rather than drizzle's builder (CTEs, locking clauses it cannot express). */

/** Rows of a raw statement; node-postgres and PGlite both answer with `{ rows }`, unparsed by drizzle. */
export async function rows<T>(db: Queryable, query: SQL): Promise<T[]> {
  // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- the two drivers type their answers apart
  return ((await db.execute(query)) as unknown as { rows: T[] }).rows
}

/** A PostgreSQL int[] literal, sent as one parameter and cast (`${intArray(ids)}::int[]`); integers need no quoting. */
export const intArray = (values: readonly number[]) => `{${values.join(',')}}`

/** A PostgreSQL text[] literal, sent as one parameter and cast (`${textArray(terms)}::text[]`): every element quoted. */
export const textArray = (values: readonly string[]) => `{${values.map((v) => `"${v.replace(/[\\"]/g, '\\$&')}"`).join(',')}}`

/** A timestamp of a raw row: node-postgres hands it over as text (drizzle parses per column, not here), PGlite as a Date. */
export const toDate = (value: string | Date): Date => (value instanceof Date ? value : new Date(value))
