import { parseArgs } from 'node:util'
import { createInterface } from 'node:readline/promises'
import { eq } from 'drizzle-orm'
import { loadConfig } from '../config/index.js'
import { createDatabase } from '../db/index.js'
import { users } from '../db/schema.js'
import { createHasher, passwordProblems } from '../auth/passwords.js'
import { findUserByEmail, normalizeEmail } from '../auth/service.js'
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
const database = await createDatabase({ url: config.databaseUrl, dataDir: config.databaseUrl ? undefined : config.dataDir })
try {
  await database.migrate()
  const hash = await createHasher(config.argon2MemoryCost).hash(password)
  const existing = await findUserByEmail(database.db, email)
  if (existing) {
    await database.db.update(users).set({ isStaff: true, isActive: true, password: hash }).where(eq(users.id, existing.id))
    process.stdout.write(`promoted ${existing.email} to staff\n`)
  } else {
    await database.db.insert(users).values({ email: normalizeEmail(email), password: hash, isStaff: true })
    process.stdout.write(`created staff account ${normalizeEmail(email)}\n`)
  }
} finally {
  await database.close()
}
