import { type ChildProcess, spawn } from 'node:child_process'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'
import { Orders } from './notifications-helpers.js'

let t: TestApp
const children: ChildProcess[] = []
beforeAll(async () => {
  // Short-lived access tokens, so the watcher meets 4401 and has to refresh within the test.
  t = await createTestApp({ listen: true, config: { accessTokenLifetime: 3 } })
})
afterAll(async () => {
  for (const child of children) if (child.exitCode === null) child.kill('SIGKILL')
  await t?.close()
})

function watch(...args: (string | Record<string, string>)[]) {
  const env = { ...process.env, ...(args.find((a) => typeof a === 'object') as Record<string, string> | undefined) }
  const flags = args.filter((a): a is string => typeof a === 'string')
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/watch-notifications.ts', ...flags], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env,
  })
  children.push(child)
  const out = { stdout: '', stderr: '' }
  child.stdout.on('data', (chunk) => (out.stdout += chunk))
  child.stderr.on('data', (chunk) => (out.stderr += chunk))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const until = async (done: () => boolean, what: string, ms = 10_000) => {
    const deadline = Date.now() + ms
    while (!done()) {
      if (Date.now() > deadline || child.exitCode !== null) throw new Error(`no ${what}; stdout:\n${out.stdout}\nstderr:\n${out.stderr}`)
      await new Promise((resolve) => setTimeout(resolve, 25))
    }
  }
  return { child, out, exited, until }
}

/** Ordering through the API with tokens issued just now (they live 3 s here); the staff account is made anew too. */
async function ordering(user: TestUser): Promise<{ orders: Orders; user: TestUser }> {
  const tokens = await t.request('POST', '/api/v1/auth/token', { body: { email: user.email, password: user.password } })
  return { orders: await Orders.on(t), user: { ...user, ...(tokens.json() as { access: string; refresh: string }) } }
}

const count = (text: string, needle: string) => text.split(needle).length - 1

describe('watch-notifications', () => {
  it('prints each notification once, across a dropped connection and an expired token', async () => {
    const user = await t.user()
    const w = watch('--email', user.email, '--password', user.password, '--url', t.url)
    await w.until(() => w.out.stderr.includes('connected to'), 'connection', 20_000)

    let now = await ordering(user)
    const { orderId, notification: n1 } = await now.orders.placed(now.user)
    await w.until(() => w.out.stdout.includes(`#${n1.id} `), `notification ${n1.id}`)
    expect(w.out.stdout).toMatch(new RegExp(`^\\S+Z  #${n1.id}  order ${orderId}  new -> pending  Order #${orderId} has been placed\\.\\n$`))

    // The connection drops (no close frame); a change made meanwhile is replayed on the reconnect.
    for (const socket of t.app.websocketServer.clients) socket.terminate()
    const n2 = await (now = await ordering(user)).orders.moved(now.user, orderId, 'shipped')
    await w.until(() => w.out.stdout.includes(`#${n2.id} `), `notification ${n2.id}`)
    // The server answers the watcher's ping after the replay, so this line may follow the notification.
    await w.until(() => w.out.stderr.includes(`resuming after #${n1.id}`), 'resumption')

    // The 3 s access token expires: closed with 4401, refreshed, resumed.
    await w.until(() => w.out.stderr.includes('access token expired; refreshing it'), 'token refresh')
    const connections = count(w.out.stderr, 'connected to')
    await w.until(() => count(w.out.stderr, 'connected to') > connections, 'reconnection')
    const n3 = await (now = await ordering(user)).orders.moved(now.user, orderId, 'delivered')
    await w.until(() => w.out.stdout.includes(`#${n3.id} `), `notification ${n3.id}`)

    const lines = w.out.stdout.trim().split('\n')
    expect(lines.map((l) => /#(\d+) /.exec(l)?.[1])).toEqual([n1.id, n2.id, n3.id].map(String))
    w.child.kill('SIGTERM')
    expect(await w.exited).toBe(0)
  })

  it('takes the password from STOREFRONT_PASSWORD, out of sight of ps', async () => {
    const user = await t.user()
    const w = watch('--email', user.email, '--url', t.url, { STOREFRONT_PASSWORD: user.password })
    await w.until(() => w.out.stderr.includes('connected to'), 'connection', 20_000)
    w.child.kill('SIGTERM')
    expect(await w.exited).toBe(0)
  })

  it('exits with a clear message on wrong credentials or usage', async () => {
    const wrong = watch('--email', 'nobody@example.com', '--password', 'wrong-password-1', '--url', t.url)
    expect(await wrong.exited).toBe(1)
    expect(wrong.out.stderr).toContain('login failed (401): No active account found with the given credentials')
    const usage = watch('--email', 'x@example.com')
    expect(await usage.exited).toBe(2)
    expect(usage.out.stderr).toContain('usage: npm run watch-notifications')
  })
})
