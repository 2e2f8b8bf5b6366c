import type { Queryable } from './index.js'

/**
 * Named prepared statements: node-postgres parses one once per connection and then only binds and executes it, which
 * spares PostgreSQL the parse and planning of every call. Two ways in, for the two ways a statement is written.
 */

interface Session {
  prepareQuery(query: { sql: string; params: unknown[] }, fields: undefined, name: string, arrayMode: false): { execute(): Promise<unknown> }
}

/**
 * Rows of a hot statement written as SQL text (`text` with `$1`…, the same text every time for a `name`). PGlite has
 * no named statements and just runs it. Goes through drizzle's session, so its logger (the tests' query counter) sees
 * it like any other statement.
 */
export async function preparedRows<T>(db: Queryable, name: string, text: string, values: unknown[]): Promise<T[]> {
  const { session } = db as unknown as { session: Session }
  const result = (await session.prepareQuery({ sql: text, params: values }, undefined, name, false).execute()) as { rows: T[] }
  return result.rows
}

interface Preparable<P> {
  prepare(name: string): P
}

/** Each database handle's drizzle statements, by name: built (and their SQL text generated) once. */
const statements = new WeakMap<Queryable, Map<string, unknown>>()

/**
 * A statement written with drizzle's query builder, named `name` on `db` and built by `build` the first time (the
 * builder's work and the SQL text are then spared too). The name must determine the text: a server
 * connection refuses a second statement of the same name with another text (PGlite ignores names).
 */
export function preparedQuery<P>(db: Queryable, name: string, build: () => Preparable<P>): P {
  let byName = statements.get(db)
  if (!byName) statements.set(db, (byName = new Map<string, unknown>()))
  let statement = byName.get(name) as P | undefined
  if (statement === undefined) byName.set(name, (statement = build().prepare(name)))
  return statement
}
