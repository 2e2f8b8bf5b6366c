/** Starting `src/main.ts` as a real child process, as an operator would, for the config and shutdown tests. */
import { type ChildProcess, spawn } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'

export const root = fileURLToPath(new URL('..', import.meta.url))
const tsx = fileURLToPath(new URL('../node_modules/.bin/tsx', import.meta.url))

/** Only what the child needs: nothing of the test runner's own environment (NODE_ENV, DATABASE_URL, ...) leaks in. */
export function childEnv(vars: Record<string, string | undefined>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: process.env.HOME, LOG_LEVEL: 'warn' }
  for (const [key, value] of Object.entries(vars)) if (value !== undefined) env[key] = value
  return env
}

export interface Exited {
  code: number | null
  signal: NodeJS.Signals | null
  stdout: string
  stderr: string
}

export interface Server {
  child: ChildProcess
  url: string
  exited: Promise<Exited>
}

function collect(child: ChildProcess): Promise<Exited> {
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (d: Buffer) => (stdout += d.toString()))
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()))
  return new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr })))
}

/** `npx tsx src/main.ts`, run to its end (for start-up failures). */
export function runMain(env: NodeJS.ProcessEnv, timeoutMs = 30_000): Promise<Exited> {
  const child = spawn(tsx, ['src/main.ts'], { cwd: root, env, stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return collect(child).finally(() => clearTimeout(timer))
}

export async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

/**
 * How node runs a module of src/ (`main`, `cli/seed`): as TypeScript with the tsx loader, or, `compiled`, the
 * JavaScript `npm run build` wrote to dist/ (the production path). One process either way, so signals reach it.
 */
function entry(module: string, compiled = false): string[] {
  return compiled ? [`dist/${module}.js`] : ['--import', 'tsx', `src/${module}.ts`]
}

/** Starts the server and waits until it answers /health/live. */
export async function startServer(vars: Record<string, string | undefined>, timeoutMs = 60_000, options: { compiled?: boolean } = {}): Promise<Server> {
  const port = await freePort()
  const child = spawn(process.execPath, entry('main', options.compiled), {
    cwd: root,
    env: childEnv({ HOST: '127.0.0.1', PORT: String(port), ...vars }),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const exited = collect(child)
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + timeoutMs
  let done: Exited | undefined
  void exited.then((e) => (done = e))
  for (;;) {
    if (done) throw new Error(`server exited during start (${done.code}): ${done.stderr}`)
    try {
      if ((await fetch(`${url}/health/live`)).ok) return { child, url, exited }
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error('server did not start in time')
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

export async function stopServer(server: Server, signal: NodeJS.Signals = 'SIGTERM'): Promise<Exited> {
  if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill(signal)
  return server.exited
}

export async function postJson(url: string, body: unknown, token?: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: JSON.stringify(body),
  })
  const text = await res.text()
  return { status: res.status, body: text ? JSON.parse(text) : undefined }
}

/** A CLI command (`src/cli/<name>.ts`) run to its end, as `npm run <name>` would. */
export function runCli(
  name: string,
  args: string[],
  vars: Record<string, string | undefined>,
  timeoutMs = 60_000,
  options: { compiled?: boolean } = {},
): Promise<Exited> {
  const child = spawn(process.execPath, [...entry(`cli/${name}`, options.compiled), ...args], {
    cwd: root,
    env: childEnv(vars),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return collect(child).finally(() => clearTimeout(timer))
}
