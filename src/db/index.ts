import { fromRoot } from '../paths.js'
import { sql } from 'drizzle-orm'
import type { PgDatabase, PgQueryResultHKT } from 'drizzle-orm/pg-core'
import type { Logger } from 'drizzle-orm/logger'
import * as schema from './schema.js'
import { type DataDirClaim, claimDataDir } from './datadir.js'

export type Db = PgDatabase<PgQueryResultHKT, typeof schema>
/** The handle a transaction callback receives; accepted wherever a query may run inside or outside a transaction. */
export type Tx = Parameters<Parameters<Db['transaction']>[0]>[0]
export type Queryable = Db | Tx

export interface Database {
  db: Db
  kind: 'postgres' | 'pglite'
  /** Throws when the database does not answer within the timeout. */
  ping(timeoutMs?: number): Promise<void>
  migrate(): Promise<void>
  close(): Promise<void>
  /** Embedded database in a folder: the control socket of the folder this process holds (see datadir.ts). */
  control?: Pick<DataDirClaim, 'handle'>
}

export interface DatabaseOptions {
  /** A postgres:// URL for a real server; undefined for the embedded PGlite. */
  url?: string | undefined
  /** PGlite data folder; undefined keeps the embedded database in memory (tests). */
  dataDir?: string | undefined
  /** Who opens the data folder (`server`, or the CLI command), as told to a second process that finds it held. */
  owner?: string
  poolSize?: number
  /**
   * Cancels a statement that runs longer (PostgreSQL's statement_timeout) on a real server; the service sets it, the
   * command-line tools (migrate, seed) leave it unset and run unbounded.
   */
  statementTimeoutMs?: number | undefined
  /** Called with every statement drizzle sends; tests count queries with it. */
  onQuery?: (query: string) => void
}

const migrationsFolder = fromRoot('drizzle')
/** Serializes migrations when several instances start at once against one server. */
const MIGRATION_LOCK = 72_176_001

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms)
    }),
  ]).finally(() => clearTimeout(timer))
}

export async function createDatabase(options: DatabaseOptions): Promise<Database> {
  const logger: Logger | undefined = options.onQuery
    ? { logQuery: (query) => options.onQuery?.(query) }
    : undefined

  if (options.url) {
    const { default: pg } = await import('pg')
    const { drizzle, NodePgSession } = await import('drizzle-orm/node-postgres')
    const { migrate } = await import('drizzle-orm/node-postgres/migrator')
    // numeric and bigint stay exact: money is compared and summed as strings/SQL numeric, never as a float.
    const timeout = options.statementTimeoutMs
    const pool = new pg.Pool({
      connectionString: options.url,
      max: options.poolSize ?? 10,
      connectionTimeoutMillis: 5_000,
      idleTimeoutMillis: 30_000,
      // Bounds a slow or stuck statement so a request (and the connection and transaction it holds) cannot hang.
      ...(timeout
        ? {
            statement_timeout: timeout,
            // A server whose packets are silently dropped (not refused) must not hang a request until TCP gives up.
            query_timeout: timeout + 5_000,
          }
        : {}),
      keepAlive: true,
    })
    // Readiness asks over a connection of its own: a pool busy with requests is not a database that is down.
    const probe = new pg.Pool({ connectionString: options.url, max: 1, connectionTimeoutMillis: 5_000, idleTimeoutMillis: 60_000, keepAlive: true })
    probe.on('error', () => {})
    // pg emits 'error' on a client whose connection dies (a terminated backend, a cut network), also while it is
    // checked out between two statements of a transaction, where pg-pool listens no more: unheard, that 'error'
    // ends the process. Heard, the client is just marked not queryable: whoever holds it gets the error from its
    // next statement, and the pool discards it on release. Idle clients are covered by the pool's own 'error'.
    pool.on('connect', (client) => client.on('error', () => {}))
    pool.on('error', () => {})
    const db = drizzle({ client: pool, schema, ...(logger ? { logger } : {}) })
    type Parts = ConstructorParameters<typeof NodePgSession>
    const session = (db as unknown as {
      session: { dialect: Parts[1]; schema: Parts[2]; options: Parts[3]; transaction: InstanceType<typeof NodePgSession>['transaction'] }
    }).session
    // drizzle's transaction on a pool never releases the client when BEGIN fails (a dead client leaks, and enough
    // of them exhaust the pool for good), and hands it back after a failed ROLLBACK. Here drizzle runs the
    // transaction on one checked-out client, which goes back to the pool only if it is known idle, else is destroyed.
    session.transaction = async (work, config) => {
      const client = await pool.connect()
      let idle = false
      try {
        const result = await new NodePgSession(client, session.dialect, session.schema, session.options).transaction(work, config)
        idle = client.getTransactionStatus() === 'I'
        return result
      } catch (err) {
        idle = client.getTransactionStatus() === 'I'
        throw err
      } finally {
        client.release(idle ? undefined : new Error('connection lost or left inside a transaction'))
      }
    }
    return {
      db: db as unknown as Db,
      kind: 'postgres',
      ping: async (timeoutMs = 2_000) => {
        await withTimeout(probe.query('SELECT 1'), timeoutMs)
      },
      // A connection of its own, outside the pool's statement timeout: building an index on a big table takes long.
      migrate: async () => {
        const client = new pg.Client({ connectionString: options.url })
        client.on('error', () => {})
        await client.connect()
        try {
          await client.query('SELECT pg_advisory_lock($1)', [MIGRATION_LOCK])
          await migrate(drizzle({ client }), { migrationsFolder })
        } finally {
          await client.query('SELECT pg_advisory_unlock($1)', [MIGRATION_LOCK]).catch(() => {})
          await client.end().catch(() => {})
        }
      },
      close: async () => {
        await Promise.all([pool.end(), probe.end()])
      },
    }
  }

  const { PGlite } = await import('@electric-sql/pglite')
  const { pg_trgm } = await import('@electric-sql/pglite/contrib/pg_trgm')
  const { drizzle } = await import('drizzle-orm/pglite')
  const { migrate } = await import('drizzle-orm/pglite/migrator')
  // Throws DataDirInUse when another live process holds the folder.
  const claim = options.dataDir ? await claimDataDir(options.dataDir, options.owner ?? 'server') : undefined
  let client: InstanceType<typeof PGlite>
  try {
    client = await PGlite.create({ dataDir: options.dataDir, extensions: { pg_trgm } })
    await claim?.restrict()
  } catch (err) {
    await claim?.release()
    throw err
  }
  const db = drizzle({ client, schema, ...(logger ? { logger } : {}) }) as unknown as Db
  return {
    db,
    kind: 'pglite',
    ping: async (timeoutMs = 2_000) => {
      await withTimeout(db.execute(sql`SELECT 1`), timeoutMs)
    },
    migrate: () => migrate(db as never, { migrationsFolder }),
    close: async () => {
      await client.close()
      await claim?.release()
    },
    ...(claim ? { control: claim } : {}),
  }
}
