/**
 * The `limit` section: what this machine's Redis and PostgreSQL give without the service, measured by their own
 * benchmark tools on the bench's database and Redis prefix. The cached reads are compared with the ceiling, the
 * order scenarios with these.
 */
import { execFile, execFileSync, spawnSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Redis } from 'ioredis'
import { summarize } from './load.js'
import { type Fixture, PGBENCH_CLIENTS } from './fixture.js'

export interface LimitRow {
  name: string
  tool: string
  rate: number
  p50: number
  p99: number
  notes?: string
}

export interface Limits {
  rows: LimitRow[]
  /** The plans of the statements inside place_order after the pgbench orders, before and after ANALYZE. */
  planCheck?: string
  /** pgbench's rates for the statements the service's order and add-to-cart scenarios send. */
  order?: number
  addToCart?: number
}

const pgbenchDir = fileURLToPath(new URL('./pgbench/', import.meta.url))

const installed = (tool: string) => !spawnSync(tool, ['--version']).error

function psql(url: string, command: string): string {
  return execFileSync('psql', [url, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', command], { encoding: 'utf8' })
}

export function vacuumAnalyze(url: string): void {
  psql(url, 'VACUUM (ANALYZE)')
}

/** Whether the server vacuums and analyzes by itself; the report says so, since the bench compensates. */
export const autovacuum = (url: string): string => psql(url, 'SHOW autovacuum').trim()

async function redisGet(redisUrl: string, key: string, bytes: number, options: { connections: number; threads: number; duration: number }): Promise<LimitRow> {
  const redis = new Redis(redisUrl, { lazyConnect: true })
  await redis.connect()
  try {
    await redis.set(key, 'x'.repeat(bytes))
    const requests = Math.max(20_000, 20_000 * options.duration)
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
      execFile(
        'redis-benchmark',
        ['-u', redisUrl, '-c', String(options.connections), '--threads', String(options.threads), '-n', String(requests), '--csv', 'GET', key],
        (err, out) => (err ? reject(new Error(`redis-benchmark: ${err.message}`, { cause: err })) : resolve({ stdout: out })),
      ),
    )
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
    const row = stdout.trim().split('\n').at(-1)!.split(',').map((f) => f.replaceAll('"', ''))
    return {
      name: `redis GET of a ${bytes}-byte value`,
      tool: `redis-benchmark -c ${options.connections} --threads ${options.threads}`,
      rate: Number(row[1]),
      p50: Number(row[4]),
      p99: Number(row[6]),
      notes: 'the size of the cached list page 1; a cached read is one Redis round trip',
    }
  } finally {
    await redis.del(key)
    redis.disconnect()
  }
}

interface PgbenchRun {
  tps: number
  transactions: number
  failed: number
  p50: number
  p99: number
  aborted: boolean
}

/** The add-to-cart cycle alone, or followed by placing the order: the cycles bench/wrk.lua drives. */
type Cycle = 'add' | 'order'

const scriptFiles = (cycle: Cycle) => (cycle === 'order' ? ['add-to-cart.sql', 'place-order.sql'] : ['add-to-cart.sql'])

/**
 * The script pgbench runs for a cycle: client N is buyer N, the product is picked as bench/wrk.lua picks it (one
 * random product of all per order; one of the buyer's own ten when only adding), then the service's statements.
 */
function writeScript(cycle: Cycle, file: string): void {
  const product = cycle === 'order' ? 'random(0, :products - 1)' : '(:client_id * 10 + random(0, 9)) % :products'
  const header = ['\\set uid :first_user + :client_id', `\\set pid :first_product + ${product}`]
  writeFileSync(file, [...header, ...scriptFiles(cycle).map((f) => readFileSync(join(pgbenchDir, f), 'utf8'))].join('\n'))
}

async function pgbench(url: string, cycle: Cycle, mode: 'extended' | 'prepared', fixture: Fixture, duration: number, threads: number): Promise<PgbenchRun> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-pgbench-'))
  try {
    const script = join(dir, 'script.sql')
    writeScript(cycle, script)
    const clients = Math.min(PGBENCH_CLIENTS, fixture.buyers.tokens.length)
    const args = [
      ...['-n', '-M', mode, '-c', String(clients), '-j', String(Math.min(threads, clients)), '-T', String(duration)],
      ...['-f', script, '-l', `--log-prefix=${join(dir, 'log')}`],
      ...['-D', `first_user=${fixture.buyers.firstId}`, '-D', `first_product=${fixture.orderProducts.first}`, '-D', `products=${fixture.orderProducts.count}`],
      url,
    ]
    // pgbench exits non-zero when a client aborts; its summary is still printed and is reported as aborted.
    const stdout = await new Promise<string>((resolve) => execFile('pgbench', args, (_err, out, err) => resolve(`${out}\n${err}`)))
    const number = (pattern: RegExp) => Number(pattern.exec(stdout)?.[1] ?? Number.NaN)
    // Each log line: client_id transaction_no time_us script_no epoch epoch_us.
    const latencies = readdirSync(dir)
      .filter((file) => file.startsWith('log'))
      .flatMap((file) =>
        readFileSync(join(dir, file), 'utf8')
          .split('\n')
          .filter(Boolean)
          .map((line) => Number(line.split(' ')[2]) / 1000),
      )
    const stats = summarize(latencies, latencies.length)
    const tps = number(/tps = ([\d.]+)/)
    if (Number.isNaN(tps)) throw new Error(`pgbench (${cycle}) printed no tps:\n${stdout}`)
    return {
      tps,
      transactions: number(/transactions actually processed: (\d+)/),
      failed: number(/failed transactions: (\d+)/) || 0,
      p50: stats.p50,
      p99: stats.p99,
      aborted: /aborted/i.test(stdout),
    }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

interface PlanNode {
  'Node Type': string
  'Relation Name'?: string
  'Index Name'?: string
  'Parent Relationship'?: string
  Plans?: PlanNode[]
}

/** A plan on one line: each node with its table and index, children in parentheses (init plans left out). */
function planLine(node: PlanNode): string {
  const children = (node.Plans ?? []).filter((p) => p['Parent Relationship'] !== 'InitPlan').map(planLine)
  const on = node['Relation Name'] ? ` on ${node['Relation Name']}` : ''
  const using = node['Index Name'] ? ` using ${node['Index Name']}` : ''
  return `${node['Node Type']}${on}${using}${children.length ? `(${children.join(', ')})` : ''}`
}

/** What auto_explain logs (LOG messages, sent to the client with client_min_messages) for one nested statement. */
interface Explained {
  Plan: PlanNode
}

/**
 * The plans of the statements inside place_order (bench/pgbench/place-order.sql's call, the service's), run for real
 * on a one-line cart and rolled back: auto_explain logs every nested statement's plan to the client. Only those that
 * read a table are kept, one line each.
 */
function explainPlacement(url: string, fixture: Fixture): string {
  const user = fixture.buyers.firstId
  const product = fixture.orderProducts.first
  const script = readFileSync(join(pgbenchDir, 'place-order.sql'), 'utf8')
  const call = script.slice(script.indexOf('SELECT place_order(')).replaceAll(':uid', String(user)).replaceAll(':pid', String(product))
  const run = spawnSync(
    'psql',
    [
      ...[url, '-qAtX', '-v', 'ON_ERROR_STOP=1', '-c', "LOAD 'auto_explain'"],
      ...['-c', 'SET auto_explain.log_min_duration = 0; SET auto_explain.log_nested_statements = on; SET auto_explain.log_format = json'],
      ...['-c', 'BEGIN', '-c', `INSERT INTO cart_items (user_id, product_id, quantity) VALUES (${user}, ${product}, 1)`],
      ...['-c', 'SET client_min_messages = log', '-c', call, '-c', 'ROLLBACK'],
    ],
    { encoding: 'utf8' },
  )
  if (run.status !== 0) throw new Error(`psql (explaining place_order) failed:\n${run.stderr}`)
  const plans = run.stderr
    .split(/^LOG: {2}duration: [\d.]+ ms {2}plan:\n/m)
    .slice(1)
    .map((text) => planLine((JSON.parse(text) as Explained).Plan))
  return plans.filter((line) => line.includes(' on ')).join('; ')
}

export async function measureLimits(
  env: Record<string, string>,
  fixture: Fixture,
  options: { connections: number; threads: number; duration: number; pageBytes?: number | undefined; pgbench: boolean },
  log: (line: string) => void,
): Promise<Limits> {
  const url = env.DATABASE_URL!
  const limits: Limits = { rows: [] }
  if (options.pageBytes && installed('redis-benchmark')) {
    log('limit: redis-benchmark GET')
    limits.rows.push(await redisGet(env.REDIS_URL!, `${env.REDIS_PREFIX}limit:page`, options.pageBytes, options))
  } else if (options.pageBytes) log('limit: redis-benchmark is not installed, Redis not measured')
  if (!options.pgbench) return limits
  if (!installed('pgbench')) {
    log('limit: pgbench is not installed, PostgreSQL not measured')
    return limits
  }
  const emptyCarts = () => psql(url, `DELETE FROM cart_items WHERE user_id BETWEEN ${fixture.buyers.firstId} AND ${fixture.buyers.firstId + fixture.buyers.tokens.length - 1}`)
  const run = async (name: string, cycle: Cycle, mode: 'extended' | 'prepared'): Promise<PgbenchRun> => {
    log(`limit: pgbench ${name}`)
    const result = await pgbench(url, cycle, mode, fixture, options.duration, options.threads)
    const notes = [
      `${result.transactions} transactions, ${result.failed} failed`,
      result.aborted ? 'CLIENTS ABORTED' : '',
      mode === 'extended' ? 'unnamed statements, parsed and planned every time: not what the service sends' : '',
    ]
    limits.rows.push({
      name,
      tool: `pgbench -M ${mode} -c ${PGBENCH_CLIENTS}: ${scriptFiles(cycle).join(' + ')}`,
      rate: result.tps,
      p50: result.p50,
      p99: result.p99,
      notes: notes.filter(Boolean).join('; '),
    })
    return result
  }

  emptyCarts()
  vacuumAnalyze(url)
  // The service sends both as named prepared statements (src/db/prepared.ts), as pgbench -M prepared does.
  limits.addToCart = (await run('add-to-cart statement', 'add', 'prepared')).tps
  emptyCarts()
  vacuumAnalyze(url)
  const order = await run('order: add to cart, place_order', 'order', 'prepared')
  limits.order = order.tps
  // The placements above churned cart_items with no ANALYZE since: the plans a server without autovacuum would get.
  const stale = explainPlacement(url, fixture)
  vacuumAnalyze(url)
  const fresh = explainPlacement(url, fixture)
  limits.planCheck = `after ${order.transactions} placements without ANALYZE: ${stale}; after VACUUM (ANALYZE): ${fresh}`
  await run('same, as unnamed statements', 'order', 'extended')
  emptyCarts()
  vacuumAnalyze(url)
  return limits
}
