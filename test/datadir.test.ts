/**
 * One process per embedded data folder: with a server running on DATA_DIR, the CLIs work through it or refuse in
 * one line, a second server refuses, the folder is owner-only, and a server killed with SIGKILL restarts on it.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, lstatSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { realBackend, uniqueEmail } from './helpers.js'
import { type Server, postJson, runCli, startServer, stopServer } from './server-process.js'

let dataDir: string
const env = () => ({ NODE_ENV: 'development', DATA_DIR: dataDir, RATE_LIMIT: 'off', ARGON2_MEMORY_KIB: '1024' })
const running: Server[] = []
const start = async () => {
  const server = await startServer(env())
  running.push(server)
  return server
}

beforeAll(() => {
  dataDir = join(mkdtempSync(join(tmpdir(), 'sf-datadir-')), 'data')
  // A folder made before the owner-only rule, as a user's umask left it.
  mkdirSync(dataDir, { mode: 0o755 })
  writeFileSync(join(dataDir, 'notes.txt'), 'kept', { mode: 0o644 })
})
afterAll(async () => {
  for (const server of running) await stopServer(server, 'SIGKILL')
  rmSync(join(dataDir, '..'), { recursive: true, force: true })
})

/** Every entry under `dir` whose mode lets anyone but the owner in. */
function openToOthers(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name)
    const stat = lstatSync(path)
    const mode = stat.mode & 0o777
    const own = stat.isDirectory() ? openToOthers(path) : []
    const expected = stat.isDirectory() ? 0o700 : 0o600
    return mode === expected ? own : [`${path} ${mode.toString(8)}`, ...own]
  })
}

// The embedded database is the subject: the child processes get no DATABASE_URL, whatever the project.
describe.runIf(!realBackend)('an embedded data folder held by a running server', () => {
  const admin = { email: uniqueEmail('admin'), password: 'a long admin passphrase' }
  let server: Server

  it('is owner-only, also where the folder existed before', async () => {
    server = await start()
    expect(lstatSync(dataDir).mode & 0o777).toBe(0o700)
    expect(openToOthers(dataDir)).toEqual([])
  })

  it('createadmin works through the server: the account logs in at once', async () => {
    const run = await runCli('createadmin', ['--email', admin.email, '--password', admin.password], env())
    expect({ code: run.code, stdout: run.stdout, stderr: run.stderr }).toEqual({
      code: 0,
      stdout: `createadmin: created staff account ${admin.email}, through the running server (pid ${server.child.pid})\n`,
      stderr: '',
    })
    const login = await postJson(`${server.url}/api/v1/auth/token`, admin)
    expect(login.status).toBe(200)
    const me = await fetch(`${server.url}/api/v1/users`, { headers: { authorization: `Bearer ${login.body.access}` } })
    expect(me.status).toBe(200)
  })

  it('migrate has nothing to do; seed refuses in one line', async () => {
    const migrate = await runCli('migrate', [], env())
    expect({ code: migrate.code, stdout: migrate.stdout }).toEqual({
      code: 0,
      stdout: `migrate: already migrated by the running server (pid ${server.child.pid})\n`,
    })
    const seed = await runCli('seed', ['--products', '10'], env())
    expect(seed.code).toBe(1)
    expect(seed.stdout).toBe('')
    expect(seed.stderr.trimEnd().split('\n')).toEqual([
      `seed: the embedded database in ${dataDir} is in use by the running server (pid ${server.child.pid}); stop it, seed, then start it again (a bulk load would stall every request of the embedded server)`,
    ])
  })

  it('a second server on the folder refuses with one line and code 1', async () => {
    const second = await startServer(env()).then((s) => (running.push(s), s), (err: Error) => err)
    expect(second).toBeInstanceOf(Error)
    expect((second as Error).message).toBe(
      `server exited during start (1): storefront: DATA_DIR ${dataDir} is in use by a running server (pid ${server.child.pid}): one process at a time may open an embedded database\n`,
    )
    // The first one is unharmed.
    expect((await postJson(`${server.url}/api/v1/auth/token`, admin)).status).toBe(200)
  })

  it('a server killed with SIGKILL restarts on the folder, data intact', async () => {
    await stopServer(server, 'SIGKILL')
    const started = Date.now()
    server = await start()
    // The dead holder's lock is stale after 5 s; the restart waits for that at most.
    expect(Date.now() - started).toBeLessThan(45_000)
    expect((await postJson(`${server.url}/api/v1/auth/token`, admin)).status).toBe(200)
    expect(openToOthers(dataDir)).toEqual([])
    expect((await stopServer(server)).code).toBe(0)
  })
})
