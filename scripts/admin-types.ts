/**
 * The console's API types, generated from the service's own OpenAPI document so the console is typed against the
 * same schemas the API validates and serializes with. `npm run admin:types` rewrites the committed file; a test
 * (test/admin-types.test.ts) fails while it differs from what the live /openapi.json generates.
 */
import { writeFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import openapiTS, { astToString } from 'openapi-typescript'
import { loadConfig } from '../src/config/index.js'
import { createDatabase } from '../src/db/index.js'
import { closeContext, createContext } from '../src/context.js'
import { buildApp } from '../src/app.js'

export const API_TYPES_FILE = fileURLToPath(new URL('../admin/src/api/schema.d.ts', import.meta.url))

const HEADER = `// Generated from the service's /openapi.json by \`npm run admin:types\`; do not edit.\n\n`

export async function apiTypes(document: object): Promise<string> {
  return HEADER + astToString(await openapiTS(document as never, { silent: true }))
}

/** The document the service serves, from an app built in memory (no database is queried to build it). */
async function serviceDocument(): Promise<object> {
  const config = loadConfig({ NODE_ENV: 'test', LOG_LEVEL: 'silent' })
  const { default: pino } = await import('pino')
  const ctx = await createContext(config, pino({ level: 'silent' }), { database: await createDatabase({}) })
  const app = await buildApp(ctx, { logger: false })
  try {
    await app.ready()
    return app.swagger()
  } finally {
    await app.close()
    await closeContext(ctx)
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  writeFileSync(API_TYPES_FILE, await apiTypes(await serviceDocument()))
  console.log(`wrote ${API_TYPES_FILE}`)
}
