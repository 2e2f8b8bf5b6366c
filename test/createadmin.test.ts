import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { createTestApp, realBackend } from './helpers.js'
import { childEnv, root, runCli } from './server-process.js'
import { until } from './support/wait.js'

const dir = mkdtempSync(join(tmpdir(), 'sf-createadmin-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** `npm run createadmin` on an embedded database of its own (never the test run's server). */
function createadmin(args: string[], vars: Record<string, string>): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/createadmin.ts', ...args], {
    cwd: root,
    env: childEnv({ NODE_ENV: 'development', DATA_DIR: dir, ...vars }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve) => child.on('exit', (code) => resolve({ code, stdout, stderr })))
}

describe('createadmin', () => {
  it('takes the password from STOREFRONT_PASSWORD, and says how when there is none', async () => {
    const created = await createadmin(['--email', 'admin@example.com'], { STOREFRONT_PASSWORD: 'Sturdy-Passphrase-42' })
    expect(created.stderr).toBe('')
    expect([created.code, created.stdout]).toEqual([0, 'created staff account admin@example.com\n'])
    const missing = await createadmin(['--email', 'admin@example.com'], {})
    expect(missing.code).toBe(2)
    expect(missing.stderr).toContain('STOREFRONT_PASSWORD')
  }, 60_000)
})

describe.runIf(realBackend)('createadmin on a real PostgreSQL beside running instances', () => {
  it("ends a promoted account's sessions on the running instances at once", async () => {
    const t = await createTestApp()
    try {
      const user = await t.user()
      // Read once, so the instance holds its copy of the session's state.
      expect((await t.request('GET', '/api/v1/me', { token: user.access })).statusCode).toBe(200)
      const { config } = t.ctx
      const promoted = await runCli('createadmin', ['--email', user.email], {
        NODE_ENV: 'test',
        DATABASE_URL: (t as unknown as { dbUrl: string }).dbUrl,
        REDIS_URL: config.redisUrl,
        REDIS_PREFIX: config.redisPrefix,
        STOREFRONT_PASSWORD: 'Sturdy-Passphrase-42',
      })
      expect([promoted.code, promoted.stdout, promoted.stderr]).toEqual([0, `promoted ${user.email} to staff\n`, ''])
      // Within the second revocations take everywhere, not the copy's 30 s lifetime.
      await until('the old access token refused', async () => (await t.request('GET', '/api/v1/me', { token: user.access })).statusCode === 401, 1_000)
    } finally {
      await t.close()
    }
  }, 60_000)
})
