import cluster from 'node:cluster'
import { lookup } from 'node:dns/promises'
import closeWithGrace from 'close-with-grace'
import { type DestinationStream, pino } from 'pino'
import { ConfigError, loadConfig, type Config } from './config/index.js'
import { buildApp } from './app.js'
import { closeContext, createContext } from './context.js'
import { createDatabase } from './db/index.js'
import { serializeError } from './http/logging.js'

function fail(message: string): never {
  process.stderr.write(`storefront: ${message}\n`)
  process.exit(1)
}

/** A listen failure names HOST (or PORT) and the address; a name that does not resolve is found before any work. */
function listenError(config: Config, err: unknown): Error {
  const where = `${config.host}:${config.port}`
  if ((err as NodeJS.ErrnoException).code === 'EADDRINUSE') return new Error(`PORT: ${where} is already in use`)
  return new Error(`HOST: cannot listen on ${where} (${(err as Error).message})`)
}

/** Readable lines for a person at a terminal in development; one JSON object a line for everything else. */
async function logStream(config: Config): Promise<DestinationStream | undefined> {
  if (config.env === 'production' || !process.stdout.isTTY) return undefined
  try {
    const { default: pretty } = await import('pino-pretty')
    return pretty({ colorize: true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname' })
  } catch {
    // A production install (npm ci --omit=dev) has no pino-pretty: JSON it is.
    return undefined
  }
}

async function serve(config: Config, migrated: boolean): Promise<void> {
  const stream = await logStream(config)
  const log = pino({ level: config.logLevel, serializers: { err: serializeError } }, stream)
  const ctx = await createContext(config, log, { skipMigrations: migrated })
  const app = await buildApp(ctx, stream ? { logger: { stream } } : {})
  closeWithGrace({ delay: 10_000, logger: log }, async ({ signal, err }) => {
    if (err) log.error({ err }, 'shutting down after an error')
    else log.info({ signal }, 'shutting down: finishing in-flight requests')
    await app.close()
    await closeContext(ctx)
  })
  await app.listen({ host: config.host, port: config.port }).catch((err) => {
    throw listenError(config, err)
  })
}

/** A worker that lived this long was not crash-looping: the next replacement starts at once again. */
const STABLE_MS = 30_000
const FIRST_DELAY_MS = 500
const MAX_DELAY_MS = 30_000
/** Workers in a row that die within STABLE_MS of their start: then it is a loop, and the primary gives up. */
const GIVE_UP_AFTER = 5

/**
 * The cluster primary: keeps `workers` workers running. A worker that dies is replaced, at once if it had lived a
 * while, else after a delay doubling with each quick death in a row (a worker that cannot start would otherwise be
 * re-forked in a busy loop); after GIVE_UP_AFTER quick deaths in a row the primary stops with one line and code 1.
 */
function supervise(workers: number): void {
  const bornAt = new Map<number, number>()
  const fork = () => bornAt.set(cluster.fork().id, Date.now())
  for (let i = 0; i < workers; i++) fork()
  let stopping = false
  let exitCode = 0
  const stop = () => {
    stopping = true
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
  }
  for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, stop)
  let quickDeaths = 0
  cluster.on('exit', (worker, code, signal) => {
    const lived = Date.now() - (bornAt.get(worker.id) ?? 0)
    bornAt.delete(worker.id)
    if (stopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode)
      return
    }
    quickDeaths = lived >= STABLE_MS ? 0 : quickDeaths + 1
    const how = signal ? `signal ${signal}` : `code ${code}`
    if (quickDeaths >= GIVE_UP_AFTER) {
      process.stderr.write(
        `storefront: workers keep crashing (${quickDeaths} in a row died within ${STABLE_MS / 1000} s of starting, the last with ${how}); giving up\n`,
      )
      exitCode = 1
      stop()
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(exitCode)
      return
    }
    const delay = quickDeaths === 0 ? 0 : Math.min(FIRST_DELAY_MS * 2 ** (quickDeaths - 1), MAX_DELAY_MS)
    process.stderr.write(`storefront: worker ${worker.process.pid} exited with ${how}, starting another${delay ? ` in ${delay} ms` : ''}\n`)
    setTimeout(() => {
      if (!stopping) fork()
    }, delay)
  })
}

async function main(): Promise<void> {
  let config: Config
  try {
    config = loadConfig()
  } catch (err) {
    if (err instanceof ConfigError) fail(err.message)
    throw err
  }
  await lookup(config.host).catch((err) => fail(listenError(config, err).message))
  if (config.webConcurrency > 1 && !config.databaseUrl) {
    fail('WEB_CONCURRENCY: more than one worker needs DATABASE_URL (the embedded database belongs to one process)')
  }
  if (config.webConcurrency > 1 && !config.redisUrl) {
    fail('WEB_CONCURRENCY: more than one worker needs REDIS_URL (workers share the cache and notifications through it)')
  }
  if (config.webConcurrency > 1 && cluster.isPrimary) {
    // Migrate once in the primary, then fork one worker per core; they share the listening port.
    const database = await createDatabase({ url: config.databaseUrl })
    try {
      await database.ping(5_000).catch((err) => fail(`DATABASE_URL: cannot connect (${(err as Error).message})`))
      await database.migrate().catch((err) => fail(`DATABASE_URL: cannot migrate (${(err as Error).message})`))
    } finally {
      await database.close()
    }
    supervise(config.webConcurrency)
    return
  }
  try {
    await serve(config, cluster.isWorker)
  } catch (err) {
    fail((err as Error).message)
  }
}

await main()
