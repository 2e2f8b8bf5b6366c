import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { afterAll, describe, expect, inject, it } from 'vitest'
import { realBackend } from './helpers.js'

// The benchmark's plumbing on tiny runs: every scenario runs, answers, and checks what it must, with wrk when it is
// installed and with the autocannon fallback. (Its numbers are measured by `npm run bench`, never asserted here.)
const dir = mkdtempSync(join(tmpdir(), 'bench-test-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const installed = (tool: string) => !spawnSync(tool, ['--version']).error
const hasWrk = installed('wrk')

interface Report {
  backend: string
  generator: string
  results: { name: string; generator: string; rps: number; errors: number; non2xx: number; vs?: string; notes?: string }[]
  limits: { rows: { name: string; rate: number; notes?: string }[]; planCheck?: string; order?: number; addToCart?: number }
}

const tiny = ['--products', '200', '--duration', '1', '--connections', '4', '--sockets', '10', '--no-write']

async function bench(args: string[], env: NodeJS.ProcessEnv): Promise<Report> {
  const out = join(dir, `bench-${Math.random().toString(36).slice(2)}.json`)
  await promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...tiny, '--json', out, ...args], { env, timeout: 240_000 })
  return JSON.parse(readFileSync(out, 'utf8')) as Report
}

const embeddedEnv = { ...process.env, DATABASE_URL: '', REDIS_URL: '' }
// No wrk on this PATH (the bench starts node by its absolute path, so nothing else is needed).
const withoutWrk = { ...embeddedEnv, PATH: join(dir, 'empty') }

function expectConsistentOrders(report: Report, name = 'order') {
  const order = report.results.find((r) => r.name === name)!
  expect(order.notes).toMatch(/\(consistent\)/)
  expect(order.non2xx, order.notes).toBe(0)
}

describe.skipIf(realBackend)('npm run bench', () => {
  it(`runs every scenario on a tiny catalogue with ${hasWrk ? 'wrk' : 'autocannon (wrk is not installed)'}`, async () => {
    const report = await bench(['--embedded'], embeddedEnv)
    expect(report.backend).toMatch(/embedded/)
    expect(report.generator).toBe(hasWrk ? 'wrk' : 'autocannon')
    const names = report.results.map((r) => r.name)
    for (const name of ['ceiling', 'list-cached', 'list-filtered-cached', 'detail', 'login', 'order', 'add-to-cart', 'ws-fanout', 'list-uncached', 'list-uncached-deep-cursor', 'list-uncached-search', 'list-uncached-cursors']) {
      expect(names).toContain(name)
    }
    for (const result of report.results) {
      expect(result.rps, result.name).toBeGreaterThan(0)
      expect(result.errors, result.name).toBe(0)
      if (result.name !== 'ws-fanout') expect(result.generator, result.name).toBe(report.generator)
    }
    for (const name of ['list-cached', 'detail', 'list-uncached']) {
      expect(report.results.find((r) => r.name === name)!.vs, name).toMatch(/^\d+ % of ceiling$/)
    }
    expectConsistentOrders(report)
    const add = report.results.find((r) => r.name === 'add-to-cart')!
    expect(add.non2xx, add.notes).toBe(0)
    const fanout = report.results.find((r) => r.name === 'ws-fanout')!
    expect(fanout.notes).toMatch(/lost 0; duplicates 0/)
    expect(report.limits.rows).toEqual([])
  }, 300_000)

  it('falls back to autocannon when wrk is not installed', async () => {
    const report = await bench(['--embedded', '--scenario', 'list-filtered-cached,order'], withoutWrk)
    expect(report.generator).toBe('autocannon')
    expect(report.results.map((r) => [r.name, r.generator])).toEqual([
      ['ceiling', 'autocannon'],
      ['list-filtered-cached', 'autocannon'],
      ['order', 'autocannon'],
    ])
    expect(report.results.find((r) => r.name === 'list-filtered-cached')!.vs).toMatch(/^\d+ % of ceiling$/)
    expectConsistentOrders(report)
  }, 300_000)

  it('refuses --generator wrk when wrk is not installed, and the embedded defaults without --embedded', async () => {
    const run = (args: string[], env: NodeJS.ProcessEnv) => promisify(execFile)(process.execPath, ['--import', 'tsx', 'bench/run.ts', ...args], { env })
    await expect(run(['--embedded', '--generator', 'wrk'], withoutWrk)).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/wrk is not installed/) })
    await expect(run([], embeddedEnv)).rejects.toMatchObject({ code: 2, stderr: expect.stringMatching(/DATABASE_URL and REDIS_URL/) })
  })
})

describe.runIf(realBackend && installed('pgbench') && installed('redis-benchmark'))('npm run bench on real servers', () => {
  it('measures the limit (redis-benchmark, pgbench) and states the order row against it', async () => {
    // Named after this run's template database, so the suite's teardown drops it whatever happens here.
    const database = `${inject('templateDatabase')}_bench`
    const report = await bench(['--workers', '1', '--scenario', 'list-cached,order', '--database', database], process.env)
    expect(report.limits.rows.map((r) => r.name)).toEqual([
      expect.stringMatching(/^redis GET of a \d+-byte value$/),
      'add-to-cart statement',
      'order: add to cart, place_order',
      'same, as unnamed statements',
    ])
    for (const row of report.limits.rows) expect(row.rate, row.name).toBeGreaterThan(0)
    for (const row of report.limits.rows.slice(1)) expect(row.notes, row.name).toMatch(/, 0 failed$|, 0 failed;/)
    expect(report.limits.planCheck).toMatch(/^after \d+ placements without ANALYZE: .*LockRows.*; after VACUUM \(ANALYZE\): .*LockRows/)
    expect(report.results.find((r) => r.name === 'order')!.vs).toMatch(/^\d+ orders\/s = \d+ % of pgbench \([\d,]+\)$/)
    expect(report.results.find((r) => r.name === 'list-cached')!.vs).toMatch(/^\d+ % of ceiling$/)
    expectConsistentOrders(report)
  }, 300_000)
})
