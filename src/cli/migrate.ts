import { loadConfig } from '../config/index.js'
import { openDatabase } from './open.js'

const config = loadConfig()
const database = await openDatabase(config, { command: 'migrate' })
try {
  await database.migrate()
  process.stdout.write(`migrated the ${database.kind === 'pglite' ? `embedded database in ${config.dataDir}` : 'database'}\n`)
} catch (err) {
  process.stderr.write(`migrate: ${(err as Error).message}\n`)
  process.exitCode = 1
} finally {
  await database.close()
}
