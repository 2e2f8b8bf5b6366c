import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, it } from 'vitest'
import { realBackend } from './helpers.js'

// The benchmark's plumbing on a tiny embedded run: every scenario runs, answers, and checks what it must.
// (Its numbers are measured by `npm run bench`, never asserted here.)
const dir = mkdtempSync(join(tmpdir(), 'bench-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe.skipIf(realBackend)('npm run bench', () => {
  it('runs every scenario on a tiny catalogue and reports consistent results', async () => {
    const out = join(dir, 'bench.json')
    const env = { ...process.env, DATABASE_URL: '', REDIS_URL: '' }
    await promisify(execFile)(
      process.execPath,
      ['--import', 'tsx', 'bench/run.ts', '--embedded', '--products', '200', '--duration', '1', '--connections', '4', '--sockets', '10', '--json', out, '--no-write'],
      { env, timeout: 240_000 },
    )
    const report = JSON.parse(readFileSync(out, 'utf8')) as {
      backend: string
      results: { name: string; rps: number; errors: number; notes?: string }[]
    }
    expect(report.backend).toMatch(/embedded/)
    const names = report.results.map((r) => r.name)
    for (const name of ['ceiling', 'list-cached', 'list-filtered-cached', 'detail', 'login', 'order', 'ws-fanout', 'list-uncached', 'list-uncached-deep-cursor', 'list-uncached-search']) {
      expect(names).toContain(name)
    }
    for (const result of report.results) {
      expect(result.rps, result.name).toBeGreaterThan(0)
      expect(result.errors, result.name).toBe(0)
    }
    const order = report.results.find((r) => r.name === 'order')!
    expect(order.notes).toMatch(/\(consistent\)/)
    expect(order.notes).not.toMatch(/5xx/)
    const fanout = report.results.find((r) => r.name === 'ws-fanout')!
    expect(fanout.notes).toMatch(/lost 0; duplicates 0/)
  }, 300_000)

  it('refuses to run on the embedded defaults without --embedded', async () => {
    const env = { ...process.env, DATABASE_URL: '', REDIS_URL: '' }
    const run = promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts'], { env })
    await expect(run).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/DATABASE_URL and REDIS_URL/) })
  })
})
