/**
 * The real server process: SIGTERM lets an in-flight request finish and exits 0, and a restart keeps the data and the
 * development JWT secret (tokens issued before the restart still work).
 */
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PASSWORD, realBackend, testDatabase, uniqueEmail } from './helpers.js'
import { type Server, postJson, startServer, stopServer } from './server-process.js'
import { until } from './support/wait.js'

let dataDir: string
let backend: Record<string, string | undefined>
let dropDatabase: () => Promise<void> = async () => {}
const running: Server[] = []

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'sf-shutdown-'))
  backend = { NODE_ENV: 'development', DATA_DIR: dataDir, RATE_LIMIT: 'off' }
  if (realBackend) {
    // A database of its own on the real server (migrated by the server itself at start) and a Redis namespace.
    const db = await testDatabase()
    await db.database.close()
    dropDatabase = db.drop
    backend = { ...backend, DATABASE_URL: db.url, REDIS_URL: process.env.REDIS_URL, REDIS_PREFIX: `sftest:${randomBytes(4).toString('hex')}:` }
  }
})

afterAll(async () => {
  for (const server of running) await stopServer(server, 'SIGKILL').catch(() => {})
  await dropDatabase()
  rmSync(dataDir, { recursive: true, force: true })
})

async function start(vars: Record<string, string> = {}): Promise<Server> {
  const server = await startServer({ ...backend, ...vars })
  running.push(server)
  return server
}

// Each test starts the server as a process, twice for some: slow on a loaded machine.
describe('server process', { timeout: 180_000 }, () => {
  it('finishes an in-flight request on SIGTERM, then exits 0', async () => {
    // A high argon2 memory cost makes registration take a noticeable time: the request is surely in flight.
    const server = await start({ ARGON2_MEMORY_KIB: String(256 * 1024), LOG_LEVEL: 'info' })
    let logged = ''
    server.child.stdout!.on('data', (chunk: Buffer) => (logged += chunk.toString()))
    const registrationsHeard = () => logged.split('\n').filter((l) => l.includes('incoming request') && l.includes('/api/v1/auth/register')).length
    expect((await postJson(`${server.url}/api/v1/auth/register`, { email: uniqueEmail('before'), password: PASSWORD })).status).toBe(201)

    const inFlight = uniqueEmail('inflight')
    const pending = postJson(`${server.url}/api/v1/auth/register`, { email: inFlight, password: PASSWORD })
    // Signalled once the server has the request: it is then hashing the password.
    await until('the server to receive the second registration', () => registrationsHeard() === 2, 30_000, 5)
    const signalledAt = Date.now()
    server.child.kill('SIGTERM')
    const res = await pending
    expect(res.status).toBe(201)
    expect(res.body.email).toBe(inFlight)
    const exit = await server.exited
    expect({ code: exit.code, signal: exit.signal }, exit.stdout.slice(-2000)).toEqual({ code: 0, signal: null })
    expect(exit.stderr).toBe('')
    expect(Date.now() - signalledAt).toBeLessThan(10_000)
    // The port is closed: no new connection is accepted after shutdown.
    await expect(fetch(`${server.url}/health/live`)).rejects.toThrow()

    // What was answered before the exit was committed: the account registered in flight signs in after a restart.
    const again = await start()
    expect((await postJson(`${again.url}/api/v1/auth/token`, { email: inFlight, password: PASSWORD })).status).toBe(200)
    expect((await stopServer(again)).code).toBe(0)
  })

  it('keeps the data and the JWT secret across a restart', async () => {
    const email = uniqueEmail('restart')
    const server = await start()
    expect((await postJson(`${server.url}/api/v1/auth/register`, { email, password: PASSWORD })).status).toBe(201)
    const login = await postJson(`${server.url}/api/v1/auth/token`, { email, password: PASSWORD })
    expect(login.status).toBe(200)
    expect((await stopServer(server)).code).toBe(0)

    const restarted = await start()
    // A token from before the restart is still valid (same secret), and its user is still there.
    const me = await fetch(`${restarted.url}/api/v1/me`, { headers: { authorization: `Bearer ${login.body.access}` } })
    expect(me.status).toBe(200)
    expect((await me.json()).email).toBe(email)
    expect((await stopServer(restarted)).code).toBe(0)
  })
})
