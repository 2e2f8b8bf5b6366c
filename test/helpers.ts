import { randomBytes } from 'node:crypto'
import { Writable } from 'node:stream'
import type { AddressInfo } from 'node:net'
import pg from 'pg'
import { afterAll, beforeAll, inject } from 'vitest'
import type { FastifyInstance, LightMyRequestResponse } from 'fastify'
import { eq, sql } from 'drizzle-orm'
import { loadConfig, type Config } from '../src/config/index.js'
import { createDatabase, type Database } from '../src/db/index.js'
import { type AppContext, closeContext, createContext } from '../src/context.js'
import { buildApp } from '../src/app.js'
import { users } from '../src/db/schema.js'
import { rows } from '../src/db/sql.js'
import { withDatabase } from './global-setup.js'
import { until } from './support/wait.js'

export const realBackend = process.env.TEST_BACKEND === 'real'

export interface TestApp {
  app: FastifyInstance
  ctx: AppContext
  /** Every SQL statement sent since the last `queries.length = 0`. */
  queries: string[]
  /** Base URL of a listening server (only with `listen: true`). */
  url: string
  /** The app's log entries, parsed (only with `logs: true`; level info and up). */
  logs: Record<string, unknown>[]
  request(method: string, url: string, options?: RequestOptions): Promise<LightMyRequestResponse>
  /** Registers a user (random email unless given) and logs in. */
  user(options?: { email?: string; password?: string; staff?: boolean }): Promise<TestUser>
  close(): Promise<void>
}

export interface TestUser {
  id: number
  email: string
  password: string
  access: string
  refresh: string
}

export interface RequestOptions {
  token?: string
  body?: unknown
  headers?: Record<string, string>
}

export const PASSWORD = 'Sturdy-Passphrase-42'
let counter = 0

export function uniqueEmail(prefix = 'user'): string {
  return `${prefix}-${Date.now().toString(36)}-${++counter}-${randomBytes(3).toString('hex')}@example.com`
}

/** A database of its own: an in-memory PGlite, or a clone of the run's migrated template on the real server. */
export async function testDatabase(
  onQuery?: (q: string) => void,
  options: { statementTimeoutMs?: number; poolSize?: number } = {},
): Promise<{ database: Database; url?: string; drop: () => Promise<void> }> {
  if (!realBackend) {
    const database = await createDatabase({ onQuery })
    await database.migrate()
    return { database, drop: async () => {} }
  }
  const admin = process.env.DATABASE_URL!
  const template = inject('templateDatabase')
  const name = `${template}_${randomBytes(4).toString('hex')}`
  const client = new pg.Client({ connectionString: admin })
  await client.connect()
  await client.query(`CREATE DATABASE ${name} TEMPLATE ${template}`)
  await client.end()
  const url = withDatabase(admin, name)
  const database = await createDatabase({ url, onQuery, poolSize: options.poolSize ?? 20, statementTimeoutMs: options.statementTimeoutMs })
  return {
    database,
    url,
    drop: async () => {
      const c = new pg.Client({ connectionString: admin })
      await c.connect()
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
      await c.end()
    },
  }
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  const base = loadConfig({
    NODE_ENV: 'test',
    ARGON2_MEMORY_KIB: '1024',
    ...(realBackend ? { REDIS_URL: process.env.REDIS_URL } : {}),
  })
  return { ...base, redisPrefix: `sftest:${randomBytes(4).toString('hex')}:`, ...overrides }
}

/**
 * A whole app on a database of its own. Pass `shared` to build a second instance on the same database and Redis
 * namespace (two server instances behind a load balancer).
 */
export async function createTestApp(
  options: { config?: Partial<Config>; listen?: boolean; shared?: TestApp; logs?: boolean; poolSize?: number } = {},
): Promise<TestApp> {
  const queries: string[] = []
  const onQuery = (q: string) => queries.push(q)
  let owned: Awaited<ReturnType<typeof testDatabase>> | undefined
  let database: Database
  let config: Config
  if (options.shared) {
    config = { ...options.shared.ctx.config, ...options.config }
    database =
      options.shared.ctx.database.kind === 'pglite'
        ? options.shared.ctx.database
        : await createDatabase({ url: (options.shared as TestAppInternal).dbUrl, onQuery, poolSize: 20, statementTimeoutMs: config.dbStatementTimeoutMs })
  } else {
    config = testConfig(options.config)
    owned = await testDatabase(onQuery, { statementTimeoutMs: config.dbStatementTimeoutMs, poolSize: options.poolSize })
    database = owned.database
  }
  const sharedPubsub = options.shared?.ctx.pubsub.kind === 'memory' ? options.shared.ctx.pubsub : undefined
  const ctx = await createContext(config, silentLogger(), { database, ...(sharedPubsub ? { pubsub: sharedPubsub } : {}) })
  const logs: Record<string, unknown>[] = []
  const stream = new Writable({
    write(chunk, _encoding, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) logs.push(JSON.parse(line) as Record<string, unknown>)
      done()
    },
  })
  const app = await buildApp(ctx, { logger: options.logs ? { stream, level: 'info' } : false })
  let url = ''
  if (options.listen) {
    await app.listen({ host: '127.0.0.1', port: 0 })
    url = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`
  } else {
    await app.ready()
  }

  const request: TestApp['request'] = (method, path, opts = {}) =>
    app.inject({
      method: method as 'GET',
      url: path,
      headers: {
        ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}),
        ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}),
        ...opts.headers,
      },
      ...(opts.body !== undefined ? { payload: JSON.stringify(opts.body) } : {}),
    })

  const testApp: TestAppInternal = {
    app,
    ctx,
    queries,
    url,
    logs,
    dbUrl: owned?.url ?? (options.shared as TestAppInternal | undefined)?.dbUrl,
    request,
    user: async ({ email = uniqueEmail(), password = PASSWORD, staff = false } = {}) => {
      const registered = await request('POST', '/api/v1/auth/register', { body: { email, password } })
      if (registered.statusCode !== 201) throw new Error(`register failed: ${registered.body}`)
      const id = registered.json().id as number
      if (staff) await ctx.db.update(users).set({ isStaff: true }).where(eq(users.id, id))
      const tokens = await request('POST', '/api/v1/auth/token', { body: { email, password } })
      if (tokens.statusCode !== 200) throw new Error(`login failed: ${tokens.body}`)
      return { id, email, password, ...(tokens.json() as { access: string; refresh: string }) }
    },
    close: async () => {
      await app.close()
      if (options.shared && database === options.shared.ctx.database) {
        await ctx.sessions.stop()
        await Promise.allSettled([ctx.cache.close(), sharedPubsub ? undefined : ctx.pubsub.close()])
      } else {
        await closeContext(ctx)
      }
      await owned?.drop()
    },
  }
  return testApp
}

interface TestAppInternal extends TestApp {
  dbUrl: string | undefined
}

function silentLogger() {
  const noop = () => {}
  const logger = { level: 'silent', fatal: noop, error: noop, warn: noop, info: noop, debug: noop, trace: noop, silent: noop, child: () => logger }
  return logger as unknown as AppContext['log']
}

/**
 * Two instances of the app on one database, cache and pub/sub, as behind a load balancer, for the file's tests:
 * read `pair.a` and `pair.b` inside tests (they exist once beforeAll has run).
 */
export function twoInstances(options: { listen?: boolean } = {}): { a: TestApp; b: TestApp } {
  const pair = {} as { a: TestApp; b: TestApp }
  beforeAll(async () => {
    pair.a = await createTestApp(options)
    pair.b = await createTestApp({ ...options, shared: pair.a })
  })
  afterAll(async () => {
    await pair.b?.close()
    await pair.a?.close()
  })
  return pair
}

/**
 * Waits until the database's clock (which stamps updated_at) reads later than `iso` at the API's millisecond
 * precision, so that a write from now on must carry a strictly later timestamp.
 */
export async function databaseClockPast(t: TestApp, iso: string): Promise<void> {
  const past = Date.parse(iso)
  await until(`the database clock to pass ${iso}`, async () => {
    const [row] = await rows<{ now: string | Date }>(t.ctx.db, sql`SELECT clock_timestamp() AS now`)
    return new Date(row!.now).getTime() > past
  })
}
