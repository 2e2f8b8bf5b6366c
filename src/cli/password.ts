import { read } from 'read'

/** The environment variable the command-line tools read a password from. */
export const PASSWORD_ENV = 'STOREFRONT_PASSWORD'

/**
 * A password for a command-line tool, from the least visible source given: the environment (not shown by `ps`), a
 * prompt that does not echo (in a terminal), or, for compatibility, the `--password` flag, which every user of the
 * machine can read in the process list and which npm echoes.
 */
export async function readPassword(flag: string | undefined): Promise<string | undefined> {
  if (flag) return flag
  const fromEnv = process.env[PASSWORD_ENV]
  if (fromEnv) return fromEnv
  if (!process.stdin.isTTY) return undefined
  // On stderr: stdout may be piped (watch-notifications prints notifications there).
  return String(await read({ prompt: 'Password: ', silent: true, replace: '', output: process.stderr }))
}
