/**
 * The production path: `npm run build`, then plain `node dist/main.js` (no TypeScript loader) serves everything —
 * HTTP, the docs, the staff console, WebSockets — and the commands run as `node dist/cli/<name>.js`.
 */
import { execFile } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type Server, postJson, root, runCli, startServer, stopServer } from './server-process.js'

const dataDir = mkdtempSync(join(tmpdir(), 'sf-production-'))
let server: Server

beforeAll(async () => {
  await promisify(execFile)('npm', ['run', '-s', 'build'], { cwd: root, timeout: 240_000 })
  server = await startServer({ DATA_DIR: dataDir }, 60_000, { compiled: true })
}, 300_000)

afterAll(async () => {
  if (server) await stopServer(server)
  rmSync(dataDir, { recursive: true, force: true })
})

describe('node dist/main.js', () => {
  it('serves the API, the OpenAPI document, the docs page and the staff console', async () => {
    expect((await fetch(`${server.url}/health/ready`)).status).toBe(200)
    expect((await fetch(`${server.url}/api/v1/products`)).status).toBe(200)
    const doc = (await (await fetch(`${server.url}/openapi.json`)).json()) as { openapi: string }
    expect(doc.openapi).toMatch(/^3\./)
    expect((await fetch(`${server.url}/docs/`)).status).toBe(200)
    const console = await fetch(`${server.url}/admin/`)
    expect(console.status).toBe(200)
    expect(await console.text()).toContain('<script type="module"')
  })

  it('serves the notification socket (refusing a bad token with 4401)', async () => {
    const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws/notifications?token=nonsense`)
    const code = await new Promise<number>((resolve) => ws.once('close', (c) => resolve(c)))
    expect(code).toBe(4401)
  })

  it('runs the commands as node dist/cli/<name>.js, through the running server', async () => {
    const email = `admin-${Date.now()}@example.com`
    const password = 'a long passphrase for production'
    const created = await runCli('createadmin', ['--email', email], { DATA_DIR: dataDir, STOREFRONT_PASSWORD: password }, 60_000, { compiled: true })
    expect(created.code, created.stderr).toBe(0)
    expect(created.stdout).toMatch(/through the running server/)
    const login = await postJson(`${server.url}/api/v1/auth/token`, { email, password })
    expect(login.status).toBe(200)
    const migrated = await runCli('migrate', [], { DATA_DIR: dataDir }, 60_000, { compiled: true })
    expect(migrated.code, migrated.stderr).toBe(0)
  })

  it('stops on SIGTERM with exit code 0', async () => {
    const exited = await stopServer(server)
    expect(exited.code).toBe(0)
  })
})
