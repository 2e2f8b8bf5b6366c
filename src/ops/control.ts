import type { Config } from '../config/index.js'
import type { Db } from '../db/index.js'
import type { ControlHandler } from '../db/datadir.js'
import { type PasswordHasher, passwordProblems } from '../auth/passwords.js'
import type { SessionDirectory } from '../auth/sessions.js'
import { upsertStaff } from '../auth/accounts.js'

/**
 * What the embedded server does for a CLI that finds the data folder held by it (src/cli/open.ts): createadmin
 * runs here, against the server's own database; migrate has nothing to do (the server migrated at start); seed is
 * refused, because PGlite runs every statement on the server's one thread: a bulk load through it would stall every
 * request for its whole duration (and --reset would empty carts and orders under signed-in users).
 */
export function controlHandler(ctx: {
  config: Pick<Config, 'dataDir'>
  db: Db
  hasher: PasswordHasher
  sessions: SessionDirectory
}): ControlHandler {
  const server = `the running server (pid ${process.pid})`
  return async (request) => {
    switch (request.command) {
      case 'createadmin': {
        const { email, password } = request
        if (typeof email !== 'string' || typeof password !== 'string') return { ok: false, message: 'email and password are required' }
        const problems = passwordProblems(password, { email })
        if (problems.length) return { ok: false, message: problems.join(' ') }
        const result = await upsertStaff(ctx.db, ctx.hasher, email, password)
        if (!result.created) await ctx.sessions.revoked(result.id)
        return { ok: true, message: `${result.message}, through ${server}` }
      }
      case 'migrate':
        return { ok: true, message: `already migrated by ${server}` }
      case 'seed':
        return {
          ok: false,
          message: `the embedded database in ${ctx.config.dataDir} is in use by ${server}; stop it, seed, then start it again (a bulk load would stall every request of the embedded server)`,
        }
      default:
        return { ok: false, message: `unknown command ${JSON.stringify(request.command)}` }
    }
  }
}
