import { randomBytes } from 'node:crypto'
import pg from 'pg'
import type { TestProject } from 'vitest/node'
import { createDatabase } from '../src/db/index.js'

/** Real-server runs: one migrated template database per run; each test file clones it (CREATE DATABASE … TEMPLATE). */
export default async function setup(project: TestProject) {
  const url = process.env.DATABASE_URL!
  const name = `sf_test_${randomBytes(6).toString('hex')}`
  const admin = new pg.Client({ connectionString: url })
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  const templateUrl = withDatabase(url, name)
  const database = await createDatabase({ url: templateUrl, poolSize: 1 })
  await database.migrate()
  await database.close()
  project.provide('templateDatabase', name)

  return async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    const { rows } = await client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1`,
      [`${name}%`],
    )
    // Clones first, the template last.
    for (const row of rows.sort((a, b) => b.datname.length - a.datname.length)) {
      await client.query(`DROP DATABASE IF EXISTS ${row.datname} WITH (FORCE)`)
    }
    await client.end()
  }
}

export function withDatabase(url: string, database: string): string {
  const parsed = new URL(url)
  parsed.pathname = `/${database}`
  return parsed.toString()
}

declare module 'vitest' {
  export interface ProvidedContext {
    templateDatabase: string
  }
}
