import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { childEnv, root } from './server-process.js'

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
