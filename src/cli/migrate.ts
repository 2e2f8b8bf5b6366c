import { loadConfig } from '../config/index.js'
import { createDatabase } from '../db/index.js'

const config = loadConfig()
const database = await createDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl ? undefined : config.dataDir })
try {
  await database.migrate()
  process.stdout.write(`migrated the ${database.kind === 'pglite' ? `embedded database in ${config.dataDir}` : 'database'}\n`)
} catch (err) {
  process.stderr.write(`migrate: ${(err as Error).message}\n`)
  process.exitCode = 1
} finally {
  await database.close()
}
