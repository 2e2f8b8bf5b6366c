/**
 * `npm run migrate` and `npm run seed` as an operator runs them before a first start, each test on an embedded data
 * folder of its own; what they did is read back through a server started on the folder afterwards.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type SQL, sql } from 'drizzle-orm'
import { createDatabase } from '../src/db/index.js'
import { rows } from '../src/db/sql.js'
import { type Exited, type Server, runCli, startServer, stopServer } from './server-process.js'

const cleanups: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup()
})

function newDataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), 'sf-commands-'))
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

// The child gets no DATABASE_URL whatever the project: the embedded database is the subject.
const run = (name: string, args: string[], dataDir: string) => runCli(name, args, { NODE_ENV: 'development', DATA_DIR: dataDir })
const outcome = (e: Exited) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr })

async function serve(dataDir: string): Promise<Server> {
  const server = await startServer({ NODE_ENV: 'development', DATA_DIR: dataDir })
  cleanups.push(async () => void (await stopServer(server)))
  return server
}

/** A query on the folder, without migrating it (the command has exited, so the folder is free). */
async function query<T>(dataDir: string, statement: SQL): Promise<T[]> {
  const database = await createDatabase({ dataDir })
  try {
    return await rows<T>(database.db, statement)
  } finally {
    await database.close()
  }
}

const tablesIn = async (dataDir: string) =>
  (await query<{ name: string }>(dataDir, sql`SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public' ORDER BY 1`)).map((t) => t.name)

const count = async (server: Server, path: string) => ((await (await fetch(`${server.url}${path}`)).json()) as { count: number }).count

describe('npm run migrate', () => {
  it('creates the schema in a new data folder, and has nothing to do the second time', { timeout: 180_000 }, async () => {
    const dataDir = newDataDir()
    expect(await tablesIn(dataDir)).toEqual([])
    const done = `migrated the embedded database in ${dataDir}\n`
    expect(outcome(await run('migrate', [], dataDir))).toEqual({ code: 0, stdout: done, stderr: '' })
    const tables = await tablesIn(dataDir)
    expect(tables).toEqual(expect.arrayContaining(['categories', 'notifications', 'order_items', 'orders', 'products', 'users']))
    expect(outcome(await run('migrate', [], dataDir))).toEqual({ code: 0, stdout: done, stderr: '' })
    expect(await tablesIn(dataDir)).toEqual(tables)
  })
})

describe('npm run seed', () => {
  it('fills the catalogue to the sizes asked, tops it up when run again, and a server serves what it wrote', { timeout: 180_000 }, async () => {
    const dataDir = newDataDir()
    expect((await run('migrate', [], dataDir)).code).toBe(0)
    const first = await run('seed', ['--products', '12', '--categories', '3'], dataDir)
    expect([first.code, first.stderr]).toEqual([0, ''])
    expect(first.stdout).toContain('categories: 3 created, 3 in total\n')
    expect(first.stdout).toContain('products: 12 created in ')

    const again = await run('seed', ['--products', '20', '--categories', '3'], dataDir)
    expect([again.code, again.stderr]).toEqual([0, ''])
    expect(again.stdout).toContain('categories: 0 created, 3 in total\n')
    expect(again.stdout).toMatch(/^products: 8 created in .*, 20 in total$/m)

    const server = await serve(dataDir)
    expect(await count(server, '/api/v1/products')).toBe(20)
    expect(await count(server, '/api/v1/categories')).toBe(3)
  })

  it('refuses sizes that are not whole numbers, changing nothing', { timeout: 180_000 }, async () => {
    const dataDir = newDataDir()
    expect((await run('migrate', [], dataDir)).code).toBe(0)
    const refused = await run('seed', ['--products', '1.5'], dataDir)
    expect(refused.code).toBe(2)
    expect(refused.stderr).toContain('seed: --products and --categories must be whole numbers')
    expect(await query(dataDir, sql`SELECT count(*)::int AS n FROM products`)).toEqual([{ n: 0 }])
  })
})
