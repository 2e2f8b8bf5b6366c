import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline/promises'
import { loadConfig } from '../config/index.js'
import { createHasher, passwordProblems } from '../auth/passwords.js'
import { upsertStaff } from '../auth/accounts.js'
import { REVOCATION_CHANNEL } from '../auth/sessions.js'
import { publishOnce } from '../pubsub/index.js'
import { openDatabase } from './open.js'
import { PASSWORD_ENV, readPassword } from './password.js'

/** Creates a staff account, or promotes an existing one (and sets its password), like Django's createsuperuser. */
const { values } = parseArgs({ options: { email: { type: 'string' }, password: { type: 'string' } } })

async function ask(question: string): Promise<string> {
  const rl = createInterface({ input: process.stdin, output: process.stdout })
  try {
    return (await rl.question(question)).trim()
  } finally {
    rl.close()
  }
}

let { email } = values
if (!email && process.stdin.isTTY) email = await ask('Email: ')
const password = await readPassword(values.password)
if (!email || !password) {
  process.stderr.write(`usage: npm run createadmin -- --email E, the password from ${PASSWORD_ENV} or a prompt (--password P shows in ps)\n`)
  process.exit(2)
}
const problems = passwordProblems(password, { email })
if (problems.length) {
  process.stderr.write(`createadmin: ${problems.join(' ')}\n`)
  process.exit(2)
}

const config = loadConfig()
const database = await openDatabase(config, { command: 'createadmin', email, password })
try {
  await database.migrate()
  const result = await upsertStaff(database.db, createHasher(config.argon2MemoryCost), email, password)
  process.stdout.write(`${result.message}\n`)
  // A promotion ended the account's sessions. Running instances keep a copy of each session's state, dropped when a
  // revocation is published (else within its 30 s lifetime): this command publishes it as they do.
  if (!result.created && config.redisUrl && !(await publishOnce(config.redisUrl, config.redisPrefix, REVOCATION_CHANNEL, String(result.id)))) {
    process.stderr.write('createadmin: Redis did not answer; running instances end the old sessions within 30 s\n')
  }
} finally {
  await database.close()
}
