import cluster from 'node:cluster'
import { lookup } from 'node:dns/promises'
import closeWithGrace from 'close-with-grace'
import { pino } from 'pino'
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

async function serve(config: Config, migrated: boolean): Promise<void> {
  const log = pino({ level: config.logLevel, serializers: { err: serializeError } })
  const ctx = await createContext(config, log, { skipMigrations: migrated })
  const app = await buildApp(ctx)
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
    await database.ping(5_000).catch((err) => fail(`DATABASE_URL: cannot connect (${(err as Error).message})`))
    await database.migrate()
    await database.close()
    for (let i = 0; i < config.webConcurrency; i++) cluster.fork()
    let stopping = false
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      process.on(signal, () => {
        stopping = true
        for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
      })
    }
    cluster.on('exit', (worker, code) => {
      if (!stopping) {
        process.stderr.write(`storefront: worker ${worker.process.pid} exited with ${code}, starting another\n`)
        cluster.fork()
      } else if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0)
    })
    return
  }
  try {
    await serve(config, cluster.isWorker)
  } catch (err) {
    fail((err as Error).message)
  }
}

await main()
