import type { Queryable } from './index.js'

interface Session {
  prepareQuery(query: { sql: string; params: unknown[] }, fields: undefined, name: string, arrayMode: false): { execute(): Promise<unknown> }
}

/**
 * Rows of a hot statement sent as a named prepared statement (`text` with `$1`…, the same text every time for a
 * `name`): node-postgres parses it once per connection and then only binds and executes it, which spares PostgreSQL
 * the parse and planning of every call. PGlite has no named statements and just runs it. Goes through drizzle's
 * session, so its logger (the tests' query counter) sees it like any other statement.
 */
export async function prepared<T>(db: Queryable, name: string, text: string, values: unknown[]): Promise<T[]> {
  const { session } = db as unknown as { session: Session }
  const result = (await session.prepareQuery({ sql: text, params: values }, undefined, name, false).execute()) as { rows: T[] }
  return result.rows
}
