/**
 * `npm run bench`: seeds a catalogue, starts the service against DATABASE_URL/REDIS_URL and measures every hot
 * path with autocannon, printing a table and writing it to BENCHMARKS.md. It asserts nothing about time.
 *
 *   npm run bench -- [--products N] [--duration S] [--connections C] [--scenario NAME[,NAME]] [--json FILE]
 *                    [--workers 1,2] [--sockets N] [--embedded] [--no-write] [--profile DIR] [--database NAME]
 */
import { spawn, type ChildProcess, execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { cpus, totalmem, tmpdir } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { prepare, verifyOrders, resetBetweenPasses, type Fixture } from './fixture.js'
import { type Result, type Target, scenarios, scenarioNames } from './scenarios.js'

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
  },
})

function fail(message: string): never {
  process.stderr.write(`bench: ${message}\n`)
  process.exit(2)
}

const embedded = values.embedded
if (!embedded && !(process.env.DATABASE_URL && process.env.REDIS_URL)) {
  fail('set DATABASE_URL and REDIS_URL to real servers (or pass --embedded to measure the embedded defaults)')
}
const selected = (values.scenario ?? []).flatMap((s) => s.split(',')).filter(Boolean)
for (const name of selected) if (!scenarioNames.includes(name)) fail(`unknown scenario "${name}" (${scenarioNames.join(', ')})`)
const run = selected.length ? selected : scenarioNames
const workerCounts = (values.workers ?? (embedded ? '1' : '1,2')).split(',').map(Number)
if (embedded && workerCounts.some((w) => w > 1)) fail('--embedded runs one worker: the embedded database belongs to one process')

const options = {
  products: Number(values.products),
  duration: Number(values.duration),
  connections: Number(values.connections),
  sockets: Number(values.sockets),
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

interface Server {
  target: Target
  stop(): Promise<void>
}

async function startServer(env: Record<string, string>, workers: number, cacheTtl: number): Promise<Server> {
  const [port, ceilingPort] = [await freePort(), await freePort()]
  // --profile DIR: every server process writes a V8 CPU profile there when it stops (open it in Chrome DevTools).
  const profile = values.profile ? ['--cpu-prof', `--cpu-prof-dir=${values.profile}`] : []
  const child: ChildProcess = spawn(process.execPath, [...profile, '--import', 'tsx', 'bench/serve.ts'], {
    env: {
      ...process.env,
      ...env,
      PORT: String(port),
      CEILING_PORT: String(ceilingPort),
      HOST: '127.0.0.1',
      WEB_CONCURRENCY: String(workers),
      CACHE_TTL_SECONDS: String(cacheTtl),
      LOG_LEVEL: 'warn',
      // Measured, not protected: one load generator is one client address, and the deep OFFSET scenario's
      // statements may run past the production statement timeout on a big catalogue.
      RATE_LIMIT: 'false',
      DB_STATEMENT_TIMEOUT_MS: '60000',
      DB_POOL_SIZE: '20',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const base = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) fail(`the service exited with ${child.exitCode} while starting`)
    try {
      if ((await fetch(`${base}/health/ready`)).ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) fail('the service did not become ready within 60 s')
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    target: { base, ceiling: `http://127.0.0.1:${ceilingPort}/ceiling` },
    stop: () =>
      new Promise((resolve) => {
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}

function databaseEnv(): { env: Record<string, string>; cleanup(): void; label: string } {
  const secret = randomBytes(32).toString('hex')
  if (embedded) {
    const dir = mkdtempSync(join(tmpdir(), 'storefront-bench-'))
    return {
      env: { DATA_DIR: dir, JWT_SECRET: secret, NODE_ENV: 'production' },
      cleanup: () => rmSync(dir, { recursive: true, force: true }),
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
  return {
    env: { DATABASE_URL: url.toString(), REDIS_URL: process.env.REDIS_URL!, REDIS_PREFIX: `${name}:`, JWT_SECRET: secret, NODE_ENV: 'production' },
    cleanup: () => {},
    label: 'PostgreSQL + Redis',
  }
}

function table(results: Result[]): string {
  const head = '| scenario | workers | req/s | p50 ms | p99 ms | errors | non-2xx | notes |\n|---|---|---|---|---|---|---|---|\n'
  return (
    head +
    results
      .map(
        (r) =>
          `| ${r.name} | ${r.workers} | ${r.rps.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} | ${r.errors} | ${r.non2xx} | ${r.notes ?? ''} |`,
      )
      .join('\n') +
    '\n'
  )
}

const MARK_START = '<!-- bench:start -->'
const MARK_END = '<!-- bench:end -->'

function writeReport(results: Result[], label: string): void {
  const cpu = cpus()
  const command = `npm run bench -- ${process.argv.slice(2).join(' ')}`.trim()
  const section = [
    MARK_START,
    `## Latest \`npm run bench\``,
    '',
    `- date: ${new Date().toISOString()}`,
    `- machine: ${cpu.length} × ${cpu[0]?.model.trim() ?? 'cpu'}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`,
    `- backend: ${label}; ${options.products} products, ${options.duration} s a scenario, ${options.connections} connections`,
    `- command: \`${command}\``,
    '',
    table(results),
    MARK_END,
  ].join('\n')
  let doc = ''
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

const db = databaseEnv()
const results: Result[] = []
try {
  process.stdout.write(`bench: ${db.label}; seeding ${options.products} products\n`)
  const fixture: Fixture = await prepare(db.env, options, run)
  for (const workers of workerCounts) {
    for (const cached of [true, false]) {
      const wanted = run.filter((name) => scenarios[name]!.cached === cached)
      if (!wanted.length) continue
      const server = await startServer(db.env, workers, cached ? 3600 : 0)
      try {
        for (const name of wanted) {
          process.stdout.write(`bench: ${name} (workers=${workers})\n`)
          for (const result of await scenarios[name]!.run(server.target, fixture, options)) {
            results.push({ ...result, workers })
          }
        }
      } finally {
        await server.stop()
      }
    }
    if (run.includes('order') || run.includes('mixed')) {
      const check = await verifyOrders(db.env, fixture)
      for (const result of results.filter((r) => r.workers === workers && (r.name === 'order' || r.name === 'mixed: orders'))) {
        result.notes = `${result.notes ?? ''}; ${check}`
      }
    }
    await resetBetweenPasses(db.env, fixture)
  }
} finally {
  db.cleanup()
}

process.stdout.write(`\n${table(results)}`)
if (values.json) writeFileSync(values.json, JSON.stringify({ options, backend: db.label, results }, null, 2))
if (!values['no-write']) writeReport(results, db.label)
process.exit(0)
