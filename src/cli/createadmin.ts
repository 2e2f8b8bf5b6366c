import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline/promises'
import { loadConfig } from '../config/index.js'
import { createHasher, passwordProblems } from '../auth/passwords.js'
import { upsertStaff } from '../auth/service.js'
import { openDatabase } from './open.js'

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

let { email, password } = values
if ((!email || !password) && process.stdin.isTTY) {
  email ??= await ask('Email: ')
  password ??= await ask('Password: ')
}
if (!email || !password) {
  process.stderr.write('usage: npm run createadmin -- --email E --password P\n')
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
} finally {
  await database.close()
}
