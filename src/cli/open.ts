import type { Config } from '../config/index.js'
import { type Database, createDatabase } from '../db/index.js'
import { type ControlRequest, DataDirInUse } from '../db/datadir.js'

/**
 * The database for a CLI command. When a running server holds the embedded data folder, the command is sent to it
 * (it answers for itself: done, nothing to do, or refused) and the process exits with that answer; when another
 * command holds it, the CLI refuses. Either way, one line.
 */
export async function openDatabase(config: Config, request: ControlRequest): Promise<Database> {
  try {
    return await createDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl ? undefined : config.dataDir, owner: request.command })
  } catch (err) {
    if (!(err instanceof DataDirInUse)) throw err
    const reply =
      err.holder.kind === 'server'
        ? await err.send(request).catch((e: Error) => ({ ok: false, message: `${err.message}, which did not answer (${e.message})` }))
        : { ok: false, message: `${err.message}; run this again once it has finished` }
    ;(reply.ok ? process.stdout : process.stderr).write(`${request.command}: ${reply.message}\n`)
    process.exit(reply.ok ? 0 : 1)
  }
}
