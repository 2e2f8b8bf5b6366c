/**
 * The HTTP load generators: wrk (a C program on its own threads, driven by bench/wrk.lua) when it is installed,
 * autocannon (in this Node process, so it competes with the service for the CPU) otherwise. Both run the same
 * loads and answer in one shape, so a scenario never knows which one measured it.
 */
import { execFile, spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { performance } from 'node:perf_hooks'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import autocannon, { type Request } from 'autocannon'

export type Generator = 'wrk' | 'autocannon'

export interface HttpRequest {
  method?: string
  path: string
  body?: string
}

/** Requests sent in turn, one per request across all connections (one request: that request, always). */
export interface RequestsLoad {
  kind: 'requests'
  requests: HttpRequest[]
  headers?: Record<string, string>
}

/**
 * Logged-in buyers, each used by one connection at a time. `order`: add one random product to the cart, then place
 * the order, over and over (the order limit's cycle in bench/limit.ts). `add`: add one of the buyer's own ten
 * products, over and over (the add-to-cart limit's). Give twice as many buyers as connections: wrk now and then
 * builds a request it never sends (when a connection starts), and the buyer it took stays busy for the run.
 */
export interface BuyersLoad {
  kind: 'buyers'
  cycle: 'order' | 'add'
  tokens: string[]
  products: { first: number; count: number }
}

export type Load = RequestsLoad | BuyersLoad

export interface KindStats {
  count: number
  ok: number
  p50: number
  p99: number
}

export interface Measured {
  generator: Generator
  requests: number
  seconds: number
  rps: number
  /** Milliseconds, over every request. */
  p50: number
  p99: number
  /** Socket errors and timeouts (no response at all). */
  errors: number
  statuses: Record<string, number>
  /** X-Cache values seen. */
  cache: Record<string, number>
  /** Buyer loads: each kind of request on its own. */
  kinds: { add?: KindStats; place?: KindStats }
}

export interface LoadOptions {
  connections: number
  duration: number
  /** wrk's threads. */
  threads: number
}

/** wrk's version, or undefined when it is not installed (`wrk -v` prints it and exits 1). */
export function wrkVersion(): string | undefined {
  const probe = spawnSync('wrk', ['-v'], { encoding: 'utf8' })
  return probe.error ? undefined : (/^wrk (\S+)/.exec(probe.stdout)?.[1] ?? 'unknown version')
}

/** The product a buyer adds next: the same choice bench/wrk.lua and the pgbench scripts make. */
function productFor(load: BuyersLoad, buyer: number): number {
  const { first, count } = load.products
  if (load.cycle === 'order') return first + Math.floor(Math.random() * count)
  return first + ((buyer * 10 + Math.floor(Math.random() * 10)) % count)
}

export function percentile(sorted: number[], p: number): number {
  if (!sorted.length) return 0
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!
}

export function summarize(latencies: number[], ok: number): KindStats {
  const sorted = [...latencies].sort((a, b) => a - b)
  return { count: sorted.length, ok, p50: percentile(sorted, 50), p99: percentile(sorted, 99) }
}

const script = fileURLToPath(new URL('./wrk.lua', import.meta.url))

async function runWrk(base: string, load: Load, options: LoadOptions): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-wrk-'))
  try {
    const lines = [`mode\t${load.kind === 'requests' ? 'requests' : load.cycle}`]
    if (load.kind === 'requests') {
      for (const [name, value] of Object.entries(load.headers ?? {})) lines.push(`header\t${name}\t${value}`)
      for (const r of load.requests) lines.push(`request\t${r.method ?? 'GET'}\t${r.path}\t${r.body ?? ''}`)
    } else {
      lines.push(`products\t${load.products.first}\t${load.products.count}`)
      for (const token of load.tokens) lines.push(`buyer\t${token}`)
    }
    const plan = join(dir, 'plan.tsv')
    writeFileSync(plan, `${lines.join('\n')}\n`)
    const threads = Math.max(1, Math.min(options.threads, options.connections))
    const args = ['-t', String(threads), '-c', String(options.connections), '-d', `${options.duration}s`, '--timeout', '10s', '-s', script, base]
    const { stdout } = await promisify(execFile)('wrk', args, {
      env: { ...process.env, BENCH_PLAN: plan, BENCH_THREADS: String(threads) },
      maxBuffer: 16 * 2 ** 20,
    })
    const line = stdout.split('\n').find((l) => l.startsWith('BENCH_RESULT '))
    if (!line) throw new Error(`wrk printed no result:\n${stdout}`)
    const result = JSON.parse(line.slice('BENCH_RESULT '.length)) as Omit<Measured, 'generator' | 'rps'>
    return { ...result, generator: 'wrk', rps: result.requests / result.seconds }
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The buyer bookkeeping of bench/wrk.lua, for autocannon: which buyer is free, and each kind's latencies. */
function buyerPool(load: BuyersLoad) {
  const idle = load.tokens.map((_, i) => i)
  const ready: number[] = []
  const sentAt = new Map<number, number>()
  const latencies = { add: [] as number[], place: [] as number[] }
  const ok = { add: 0, place: 0 }
  return {
    next(): { method: string; path: string; headers: Record<string, string>; body: string } {
      let buyer = ready.pop()
      const kind = buyer === undefined ? 'add' : 'place'
      buyer ??= idle.pop() ?? 0
      sentAt.set(buyer, performance.now())
      const headers = {
        authorization: `Bearer ${load.tokens[buyer]}`,
        'content-type': 'application/json',
        'x-request-id': `b${buyer}${kind === 'add' ? 'a' : 'p'}`,
      }
      if (kind === 'place') return { method: 'POST', path: '/api/v1/orders', headers, body: '{}' }
      return { method: 'POST', path: '/api/v1/cart/items', headers, body: JSON.stringify({ product_id: productFor(load, buyer), quantity: 1 }) }
    },
    answered(requestId: string | undefined, status: number): void {
      const match = /^b(\d+)([ap])$/.exec(requestId ?? '')
      if (!match) return
      const buyer = Number(match[1])
      const kind = match[2] === 'a' ? 'add' : 'place'
      latencies[kind].push(performance.now() - (sentAt.get(buyer) ?? performance.now()))
      const success = status >= 200 && status < 300
      if (success) ok[kind]++
      if (kind === 'add' && success && load.cycle === 'order') ready.push(buyer)
      else idle.push(buyer)
    },
    kinds: (): Measured['kinds'] => ({
      ...(latencies.add.length ? { add: summarize(latencies.add, ok.add) } : {}),
      ...(latencies.place.length ? { place: summarize(latencies.place, ok.place) } : {}),
    }),
  }
}

async function runAutocannon(base: string, load: Load, options: LoadOptions): Promise<Measured> {
  const cache: Record<string, number> = {}
  const countCache = (headers: Record<string, string>) => {
    const value = headers['x-cache']
    if (value) cache[value] = (cache[value] ?? 0) + 1
  }
  let request: Request
  let kinds: () => Measured['kinds'] = () => ({})
  if (load.kind === 'requests') {
    let i = 0
    request = {
      setupRequest: (r) => {
        const next = load.requests[i++ % load.requests.length]!
        return { ...r, method: next.method ?? 'GET', path: next.path, headers: load.headers ?? {}, ...(next.body !== undefined ? { body: next.body } : {}) }
      },
      onResponse: (_status, _body, _context, headers) => countCache(headers),
    }
  } else {
    const pool = buyerPool(load)
    kinds = pool.kinds
    request = {
      setupRequest: (r) => ({ ...r, ...pool.next() }),
      onResponse: (status, _body, _context, headers) => {
        countCache(headers)
        pool.answered(headers['x-request-id'], status)
      },
    }
  }
  const result = await autocannon({ url: base, connections: options.connections, duration: options.duration, timeout: 10, requests: [request] })
  const statuses = Object.fromEntries(Object.entries(result.statusCodeStats ?? {}).map(([code, stat]) => [code, stat.count]))
  return {
    generator: 'autocannon',
    requests: result.requests.total,
    seconds: result.duration,
    rps: result.requests.average,
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.errors + result.timeouts,
    statuses,
    cache,
    kinds: kinds(),
  }
}

export function measure(generator: Generator, base: string, load: Load, options: LoadOptions): Promise<Measured> {
  return generator === 'wrk' ? runWrk(base, load, options) : runAutocannon(base, load, options)
}

export const non2xx = (m: Measured): number =>
  Object.entries(m.statuses).reduce((sum, [code, n]) => sum + (code.startsWith('2') ? 0 : n), 0)
