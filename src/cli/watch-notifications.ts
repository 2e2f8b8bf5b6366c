import { parseArgs } from 'node:util'
import { WebSocket } from 'ws'
import { CloseCode, NOTIFICATIONS_PATH, type ServerMessage, frameText } from '../notifications/protocol.js'
import type { NotificationOut } from '../notifications/service.js'
import { PASSWORD_ENV, readPassword } from './password.js'

/**
 * Prints your order notifications as they arrive. Notifications go to stdout, one line each; connection news goes to
 * stderr, so the output can be piped. A dropped connection is resumed with `since=<last id>` (nothing missed, nothing
 * repeated); an expired access token (close code 4401) is refreshed, or the account logged in again.
 */
const USAGE =
  `usage: npm run watch-notifications -- --email E [--url http://localhost:8000] [--since ID]\n` +
  `the password comes from ${PASSWORD_ENV}, or a prompt in a terminal (--password P also works, but shows in ps)`

const MIN_BACKOFF_MS = 500
const MAX_BACKOFF_MS = 30_000
/** The server pings every 30 s; this long without a ping (or any frame) means the connection is dead. */
const SILENCE_LIMIT_MS = 75_000

class FatalError extends Error {}

let options: { email?: string; password?: string; url?: string; since?: string }
try {
  options = parseArgs({
    options: { email: { type: 'string' }, password: { type: 'string' }, url: { type: 'string' }, since: { type: 'string' } },
  }).values
} catch (err) {
  fail(`${(err as Error).message}\n${USAGE}`, 2)
}
const { email } = options
const password = await readPassword(options.password)
if (!email || !password) fail(USAGE, 2)
if (options.since !== undefined && !/^\d+$/.test(options.since)) fail('--since must be a notification id', 2)

let base: URL
try {
  base = new URL(options.url ?? 'http://localhost:8000')
  if (base.protocol !== 'http:' && base.protocol !== 'https:') throw new Error()
} catch {
  fail(`--url must be an http:// or https:// URL, got "${options.url}"`, 2)
}

function fail(message: string, code = 1): never {
  process.stderr.write(`watch-notifications: ${message}\n`)
  process.exit(code)
}

function status(message: string): void {
  process.stderr.write(`${new Date().toISOString()}  ${message}\n`)
}

function line(n: NotificationOut): string {
  return `${n.created_at}  #${n.id}  order ${n.order_id}  ${n.previous_status ?? 'new'} -> ${n.status}  ${n.message}\n`
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

async function post(path: string, body: object): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(new URL(path, base), {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
    signal: AbortSignal.timeout(10_000),
  })
  const json = (await res.json().catch(() => ({}))) as Record<string, unknown>
  return { status: res.status, json }
}

interface Tokens {
  access: string
  refresh: string
}

async function login(): Promise<Tokens> {
  const res = await post('/api/v1/auth/token', { email, password })
  if (res.status === 200) return res.json as unknown as Tokens
  if (res.status >= 400 && res.status < 500 && res.status !== 429) {
    throw new FatalError(`login failed (${res.status}): ${typeof res.json.detail === 'string' ? res.json.detail : JSON.stringify(res.json)}`)
  }
  throw new Error(`login answered ${res.status}`)
}

/** A fresh pair from the refresh token (which rotates), or a new login when the refresh token is no longer valid. */
async function renew(tokens: Tokens): Promise<Tokens> {
  const res = await post('/api/v1/auth/token/refresh', { refresh: tokens.refresh })
  if (res.status === 200) return res.json as unknown as Tokens
  if (res.status === 401) return login()
  throw new Error(`token refresh answered ${res.status}`)
}

interface Outcome {
  code: number
  reason: string
  /** The server confirmed the subscription (answered our ping). */
  subscribed: boolean
}

let lastId = options.since === undefined ? undefined : Number(options.since)
/** Ids already printed, so a notification is never shown twice (bounded: old ids cannot come back). */
const printed = new Set<number>()
let current: WebSocket | undefined
let stopping = false

function connect(access: string): Promise<Outcome> {
  const url = new URL(NOTIFICATIONS_PATH, base)
  url.protocol = base.protocol === 'https:' ? 'wss:' : 'ws:'
  const since = lastId
  if (since !== undefined) url.searchParams.set('since', String(since))
  // The token goes in a header rather than the URL, which proxies and access logs record.
  const ws = new WebSocket(url, { headers: { authorization: `Bearer ${access}` }, handshakeTimeout: 10_000 })
  current = ws
  let subscribed = false
  let silence: NodeJS.Timeout | undefined
  const heard = () => {
    clearTimeout(silence)
    silence = setTimeout(() => ws.terminate(), SILENCE_LIMIT_MS)
  }

  return new Promise((resolve) => {
    ws.on('open', () => {
      heard()
      ws.send(JSON.stringify({ type: 'ping' }))
    })
    ws.on('ping', heard)
    ws.on('message', (data) => {
      heard()
      let message: ServerMessage
      try {
        message = JSON.parse(frameText(data)) as ServerMessage
      } catch {
        return
      }
      if (message.type === 'pong' && !subscribed) {
        subscribed = true
        status(`connected to ${url.origin}${url.pathname}${since === undefined ? '' : ` (resuming after #${since})`}`)
      } else if (message.type === 'order.status_changed') {
        const n = message.notification
        if (printed.has(n.id)) return
        printed.add(n.id)
        if (printed.size > 10_000) printed.delete(printed.values().next().value!)
        if (lastId === undefined || n.id > lastId) lastId = n.id
        process.stdout.write(line(n))
      } else if (message.type === 'error') {
        status(`server: ${message.detail}`)
      }
    })
    // 'error' is always followed by 'close'; the reason is reported there.
    ws.on('error', (err) => status(`connection error: ${err.message}`))
    ws.on('close', (code, reason) => {
      clearTimeout(silence)
      resolve({ code, reason: reason.toString(), subscribed })
    })
  })
}

async function main(): Promise<void> {
  let tokens: Tokens | undefined
  let failures = 0
  let unauthorizedInARow = 0
  while (!stopping) {
    try {
      tokens ??= await login()
      const outcome = await connect(tokens.access)
      if (stopping) break
      if (outcome.subscribed) failures = 0
      if (outcome.code === CloseCode.unauthorized) {
        // A token that is refused again at once (revoked, deactivated account): a fresh login decides.
        unauthorizedInARow = outcome.subscribed ? 1 : unauthorizedInARow + 1
        status(`access token ${outcome.subscribed ? 'expired' : 'refused'}; ${unauthorizedInARow > 1 ? 'logging in again' : 'refreshing it'}`)
        tokens = unauthorizedInARow > 1 ? await login() : await renew(tokens)
        if (unauthorizedInARow > 2) throw new FatalError('the server keeps refusing fresh tokens')
        continue
      }
      unauthorizedInARow = 0
      if (outcome.code === CloseCode.badRequest) throw new FatalError(`server refused the connection: ${outcome.reason}`)
      // Reconnecting would push out another of the user's sockets, which would reconnect in turn.
      if (outcome.code === CloseCode.tooManySockets) throw new FatalError(`server closed the connection: ${outcome.reason}`)
      // A server going away (restart, deploy): another instance is likely up already, so only a short pause.
      if (outcome.code === CloseCode.goingAway) failures = 0
      status(`connection closed (${outcome.code}${outcome.reason ? ` ${outcome.reason}` : ''})`)
    } catch (err) {
      if (err instanceof FatalError) fail(err.message)
      status(`cannot reach ${base.origin}: ${(err as Error).message}`)
    }
    const delay = Math.min(MAX_BACKOFF_MS, MIN_BACKOFF_MS * 2 ** failures++) * (0.5 + Math.random() / 2)
    status(`reconnecting in ${(delay / 1000).toFixed(1)} s`)
    await sleep(delay)
  }
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    stopping = true
    current?.close(CloseCode.normal)
    setTimeout(() => process.exit(0), 1_000).unref()
    current?.once('close', () => process.exit(0))
    if (!current || current.readyState === WebSocket.CLOSED) process.exit(0)
  })
}

await main()
