/**
 * `npm run bench`: seeds a catalogue, starts the service against DATABASE_URL/REDIS_URL and measures every hot
 * path with wrk (autocannon when wrk is not installed), next to a bare node:http `ceiling` and the `limit` of
 * PostgreSQL and Redis alone (pgbench, redis-benchmark), printing a table and writing it to BENCHMARKS.md. It
 * asserts nothing about time.
 *
 *   npm run bench -- [--products N] [--duration S] [--connections C] [--scenario NAME[,NAME]] [--json FILE]
 *                    [--workers 1,2] [--sockets N] [--embedded] [--no-write] [--profile DIR] [--database NAME]
 *                    [--generator wrk|autocannon] [--threads N]
 */
import { execFileSync } from 'node:child_process'
import { createRequire } from 'node:module'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { Redis } from 'ioredis'
import { prepare, verifyOrders, resetBetweenPasses, type Fixture } from './fixture.js'
import { type Limits, autovacuum, measureLimits, vacuumAnalyze } from './limit.js'
import { type Generator, wrkVersion } from './load.js'
import { freePort, startNode, type Running } from './process.js'
import { type Pass, type Result, scenarios, scenarioNames } from './scenarios.js'

const { values } = parseArgs({
  options: {
    products: { type: 'string', default: '100000' },
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '50' },
    scenario: { type: 'string', multiple: true },
    json: { type: 'string' },
    workers: { type: 'string' },
    sockets: { type: 'string', default: '10000' },
    embedded: { type: 'boolean', default: false },
    'no-write': { type: 'boolean', default: false },
    profile: { type: 'string' },
    database: { type: 'string', default: 'storefront_bench' },
    generator: { type: 'string' },
    threads: { type: 'string', default: String(cpus().length) },
  },
})

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`)
  process.exit(2)
}

const log = (line: string) => process.stdout.write(`bench: ${line}\n`)

const embedded = values.embedded
if (!embedded && !(process.env.DATABASE_URL && process.env.REDIS_URL)) {
  fail('set DATABASE_URL and REDIS_URL to real servers (or pass --embedded to measure the embedded defaults)')
}
const selected = (values.scenario ?? []).flatMap((s) => s.split(',')).filter(Boolean)
for (const name of selected) if (!scenarioNames.includes(name)) fail(`unknown scenario "${name}" (${scenarioNames.join(', ')})`)
const run = selected.length ? selected : scenarioNames
// Every read row states its ratio to the ceiling of its pass: the ceiling runs whenever a read does.
const against = new Set(run.flatMap((name) => scenarios[name]!.against ?? []))
if (against.has('ceiling') && !run.includes('ceiling')) run.unshift('ceiling')
const workerCounts = (values.workers ?? (embedded ? '1' : '1,2')).split(',').map(Number)
if (embedded && workerCounts.some((w) => w > 1)) fail('--embedded runs one worker: the embedded database belongs to one process')
if (values.generator && values.generator !== 'wrk' && values.generator !== 'autocannon') fail('--generator takes wrk or autocannon')
const wrk = wrkVersion()
if (values.generator === 'wrk' && !wrk) fail('--generator wrk: wrk is not installed (apt-get install wrk)')
const generator: Generator = (values.generator as Generator | undefined) ?? (wrk ? 'wrk' : 'autocannon')

const options = {
  products: Number(values.products),
  duration: Number(values.duration),
  connections: Number(values.connections),
  sockets: Number(values.sockets),
  threads: Number(values.threads),
}

async function startService(env: Record<string, string>, workers: number, cacheTtl: number): Promise<{ base: string; server: Running }> {
  const port = await freePort()
  const base = `http://127.0.0.1:${port}`
  // --profile DIR: every server process writes a V8 CPU profile there when it stops (open it in Chrome DevTools).
  const profile = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []
  const serviceEnv = {
    ...env,
    PORT: String(port),
    HOST: '127.0.0.1',
    WEB_CONCURRENCY: String(workers),
    CACHE_TTL_SECONDS: String(cacheTtl),
    LOG_LEVEL: 'warn',
    // Measured, not protected: one load generator is one client address, and the deep OFFSET scenario's
    // statements may run past the production statement timeout on a big catalogue.
    RATE_LIMIT: 'false',
    DB_STATEMENT_TIMEOUT_MS: '60000',
    DB_POOL_SIZE: '20',
  }
  try {
    // The service as production runs it: compiled JavaScript (built once per run, below) under plain node.
    return { base, server: await startNode('dist/main.js', serviceEnv, `${base}/health/ready`, profile) }
  } catch (err) {
    fail((err as Error).message)
  }
}

/** Empties the bench's own Redis prefix: a cache left by an earlier run would answer for the database made anew. */
async function clearPrefix(url: string, prefix: string): Promise<void> {
  const redis = new Redis(url)
  try {
    let cursor = '0'
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000)
      if (keys.length) await redis.unlink(...keys)
      cursor = next
    } while (cursor !== '0')
  } finally {
    redis.disconnect()
  }
}

async function databaseEnv(): Promise<{ env: Record<string, string>; cleanup(): Promise<void>; label: string }> {
  const secret = randomBytes(32).toString('hex')
  if (embedded) {
    const dir = mkdtempSync(join(tmpdir(), 'storefront-bench-'))
    return {
      env: { DATA_DIR: dir, JWT_SECRET: secret, NODE_ENV: 'production' },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
      label: 'embedded PGlite + in-process cache (--embedded)',
    }
  }
  // A database of the bench's own on the given server, recreated each run: never the user's data.
  const url = new URL(process.env.DATABASE_URL!)
  const name = values.database
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) fail('--database takes a plain lower-case PostgreSQL name')
  const admin = url.toString()
  execFileSync('psql', [admin, '-qc', `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`], { stdio: 'inherit' })
  execFileSync('psql', [admin, '-qc', `CREATE DATABASE ${name}`], { stdio: 'inherit' })
  url.pathname = `/${name}`
  const redisUrl = process.env.REDIS_URL!
  await clearPrefix(redisUrl, `${name}:`)
  const pgVersion = execFileSync('psql', [admin, '-qAtc', 'SHOW server_version'], { encoding: 'utf8' }).trim()
  const redis = new Redis(redisUrl)
  const redisVersion = /redis_version:(\S+)/.exec(await redis.info('server'))?.[1] ?? '?'
  redis.disconnect()
  return {
    env: { DATABASE_URL: url.toString(), REDIS_URL: redisUrl, REDIS_PREFIX: `${name}:`, JWT_SECRET: secret, NODE_ENV: 'production' },
    // The database stays for inspection; the cache is of no use once the service is gone.
    cleanup: () => clearPrefix(redisUrl, `${name}:`),
    label: `PostgreSQL ${pgVersion} + Redis ${redisVersion}`,
  }
}

const thousands = (n: number) => Math.round(n).toLocaleString('en-US')
const percent = (part: number, whole: number) => `${Math.round((100 * part) / whole)} %`

/** Words each row's comparison: reads against the ceiling of their pass, orders and carts against pgbench. */
function compare(results: Result[], limits: Limits): void {
  for (const r of results) {
    if (!r.compare) continue
    if (r.compare.with === 'ceiling') {
      const ceiling = results.find((c) => c.name === 'ceiling' && c.workers === r.workers)
      if (ceiling) r.vs = `${percent(r.compare.rate, ceiling.rps)} of ceiling`
    } else {
      const limit = r.compare.with === 'order' ? limits.order : limits.addToCart
      const unit = r.compare.with === 'order' ? 'orders/s' : 'adds/s'
      if (limit) r.vs = `${thousands(r.compare.rate)} ${unit} = ${percent(r.compare.rate, limit)} of pgbench (${thousands(limit)})`
    }
  }
}

function table(results: Result[]): string {
  const head =
    '| scenario | workers | generator | req/s | p50 ms | p99 ms | errors | non-2xx | vs ceiling / limit | notes |\n' +
    '|---|---|---|---|---|---|---|---|---|---|\n'
  const line = (r: Result) =>
    `| ${r.name} | ${r.workers} | ${r.generator} | ${thousands(r.rps)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${r.non2xx} | ${r.vs ?? ''} | ${r.notes ?? ''} |`
  return `${head}${results.map(line).join('\n')}\n`
}

function limitTable(limits: Limits): string {
  if (!limits.rows.length) return 'Not measured (the embedded defaults have no servers, or no scenario of this run needs it).\n'
  const head = '| limit | tool | ops/s | p50 ms | p99 ms | notes |\n|---|---|---|---|---|---|\n'
  const rows = limits.rows.map((l) => `| ${l.name} | \`${l.tool}\` | ${thousands(l.rate)} | ${l.p50.toFixed(2)} | ${l.p99.toFixed(2)} | ${l.notes ?? ''} |`)
  const plan = limits.planCheck ? `\nThe plans inside place_order ${limits.planCheck}.\n` : ''
  return `${head}${rows.join('\n')}\n${plan}`
}

const generatorLabel = () =>
  generator === 'wrk'
    ? `wrk ${wrk} -t${options.threads} with bench/wrk.lua`
    : 'autocannon in the bench\'s own Node process (wrk not installed, or --generator autocannon): it needs about a core itself, so reads measure it as much as the service'

const MARK_START = '<!-- bench:start -->'
const MARK_END = '<!-- bench:end -->'

function writeReport(results: Result[], limits: Limits, header: string[]): void {
  const section = [MARK_START, '## Latest `npm run bench`', '', ...header, '', '### Service', '', table(results), '### Limit: the hardware without the service', '', limitTable(limits), MARK_END].join('\n')
  let doc: string
  try {
    doc = readFileSync('BENCHMARKS.md', 'utf8')
  } catch {
    doc = '# Benchmarks\n\n'
  }
  const start = doc.indexOf(MARK_START)
  const end = doc.indexOf(MARK_END)
  doc = start >= 0 && end > start ? doc.slice(0, start) + section + doc.slice(end + MARK_END.length) : `${doc.trimEnd()}\n\n${section}\n`
  writeFileSync('BENCHMARKS.md', doc)
}

const load = loadavg()
log('compiling the service (tsc -p tsconfig.build.json)')
execFileSync(process.execPath, [createRequire(import.meta.url).resolve('typescript/bin/tsc'), '-p', 'tsconfig.build.json'], { stdio: 'inherit' })
const db = await databaseEnv()
const databaseUrl = db.env.DATABASE_URL
const results: Result[] = []
let limits: Limits = { rows: [] }
const shared: Pass['shared'] = {}
try {
  log(`${db.label}; seeding ${options.products} products; load generator ${generator}`)
  const fixture: Fixture = await prepare(db.env, options, run)
  for (const workers of workerCounts) {
    for (const cached of [true, false]) {
      const wanted = run.filter((name) => scenarios[name]!.cached === cached)
      if (!wanted.length) continue
      const { base, server } = await startService(db.env, workers, cached ? 3600 : 0)
      try {
        const pass: Pass = { base, workers, generator, options, shared }
        for (const name of wanted) {
          // Autovacuum may be off (it is on the project's machine): statistics are refreshed before every scenario.
          if (databaseUrl) vacuumAnalyze(databaseUrl)
          log(`${name} (workers=${workers})`)
          for (const result of await scenarios[name]!.run(pass, fixture)) results.push({ ...result, workers })
        }
      } finally {
        await server.stop()
      }
    }
    if (run.includes('order') || run.includes('mixed')) {
      const check = await verifyOrders(db.env, fixture)
      for (const result of results.filter((r) => r.workers === workers && r.compare?.with === 'order')) {
        result.notes = `${result.notes ?? ''}; ${check}`
      }
    }
    await resetBetweenPasses(db.env, fixture)
  }
  if (databaseUrl && (shared.pageBytes || against.has('order') || against.has('add-to-cart'))) {
    limits = await measureLimits(db.env, fixture, { ...options, pageBytes: shared.pageBytes, pgbench: against.has('order') || against.has('add-to-cart') }, log)
  }
  compare(results, limits)
} finally {
  await db.cleanup()
}

const cpu = cpus()
const header = [
  `- date: ${new Date().toISOString()}`,
  `- machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}; load average at the start ${load.map((l) => l.toFixed(2)).join(' / ')} (1 / 5 / 15 min)`,
  `- backend: ${db.label}; ${options.products} products, ${options.duration} s a scenario, ${options.connections} connections`,
  `- load generator: ${generatorLabel()}`,
  ...(databaseUrl ? [`- statistics: autovacuum is ${autovacuum(databaseUrl)} on this server; the bench runs VACUUM (ANALYZE) before every scenario and between passes`] : []),
  `- command: \`${`npm run bench -- ${process.argv.slice(2).join(' ')}`.trim()}\``,
]
process.stdout.write(`\n${header.join('\n')}\n\n${table(results)}\n${limitTable(limits)}`)
if (values.json) writeFileSync(values.json, JSON.stringify({ options, backend: db.label, generator, limits, results }, null, 2))
if (!values['no-write']) writeReport(results, limits, header)
process.exit(0)
