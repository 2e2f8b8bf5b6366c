import { describe, expect, it } from 'vitest'
import WebSocket from 'ws'
import { type TestApp, twoInstances } from './helpers.js'
import { frameText } from '../src/notifications/protocol.js'
import { until } from './support/wait.js'

// Two instances on one database and one pub/sub, as behind a load balancer.
const pair = twoInstances({ listen: true })

const me = (t: TestApp, token: string) => t.request('GET', '/api/v1/me', { token }).then((r) => r.statusCode)

describe('instant revocation', () => {
  it('logout retires the user’s access tokens on every instance at once', async () => {
    const u = await pair.a.user()
    // Both instances have the user's session state mirrored before the logout.
    expect(await me(pair.a, u.access)).toBe(200)
    expect(await me(pair.b, u.access)).toBe(200)
    expect((await pair.a.request('POST', '/api/v1/auth/logout', { token: u.access, body: { refresh: u.refresh } })).statusCode).toBe(205)
    expect(await me(pair.a, u.access)).toBe(401)
    await until('the other instance to refuse the token', async () => (await me(pair.b, u.access)) === 401, 1_000)
  })

  it('POST /auth/sessions/revoke ends every session of the caller', async () => {
    const u = await pair.a.user()
    const second = (await pair.a.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: u.password } })).json()
    expect(await me(pair.b, second.access)).toBe(200)
    const res = await pair.a.request('POST', '/api/v1/auth/sessions/revoke', { token: u.access })
    expect(res.statusCode).toBe(204)
    expect(await me(pair.a, u.access)).toBe(401)
    await until('the other instance to refuse the token', async () => (await me(pair.b, second.access)) === 401, 1_000)
    for (const refresh of [u.refresh, second.refresh]) {
      expect((await pair.b.request('POST', '/api/v1/auth/token/refresh', { body: { refresh } })).statusCode).toBe(401)
    }
    expect((await pair.b.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: u.password } })).statusCode).toBe(200)
  })

  it('staff can end another user’s sessions; others cannot', async () => {
    const staff = await pair.a.user({ staff: true })
    const u = await pair.a.user()
    const other = await pair.a.user()
    expect(await me(pair.b, u.access)).toBe(200)
    const refused = await pair.a.request('POST', '/api/v1/auth/sessions/revoke', { token: other.access, body: { user_id: u.id } })
    expect(refused.statusCode).toBe(403)
    expect(await me(pair.b, u.access)).toBe(200)
    const missing = await pair.a.request('POST', '/api/v1/auth/sessions/revoke', { token: staff.access, body: { user_id: 987654 } })
    expect(missing.statusCode).toBe(404)
    const res = await pair.a.request('POST', '/api/v1/auth/sessions/revoke', { token: staff.access, body: { user_id: u.id } })
    expect(res.statusCode).toBe(204)
    await until('the other instance to refuse the token', async () => (await me(pair.b, u.access)) === 401, 1_000)
    expect(await me(pair.b, staff.access)).toBe(200)
  })

  it('password change and deactivation through one instance lock the user out of the other', async () => {
    const staff = await pair.a.user({ staff: true })
    const u = await pair.a.user()
    expect(await me(pair.b, u.access)).toBe(200)
    await pair.a.request('POST', '/api/v1/me/password', { token: u.access, body: { old_password: u.password, new_password: 'Fresh-Passphrase-88' } })
    await until('the other instance to refuse the token', async () => (await me(pair.b, u.access)) === 401, 1_000)

    const v = await pair.a.user()
    expect(await me(pair.b, v.access)).toBe(200)
    await pair.a.request('PATCH', `/api/v1/users/${v.id}`, { token: staff.access, body: { is_active: false } })
    await until('the other instance to refuse the token', async () => (await me(pair.b, v.access)) === 401, 1_000)
    expect((await pair.b.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: v.refresh } })).statusCode).toBe(401)
    await pair.a.request('PATCH', `/api/v1/users/${v.id}`, { token: staff.access, body: { is_active: true } })
    expect((await pair.b.request('POST', '/api/v1/auth/token', { body: { email: v.email, password: v.password } })).statusCode).toBe(200)
  })

  it('an authenticated request costs no database query once the session is mirrored', async () => {
    const u = await pair.a.user()
    expect(await me(pair.a, u.access)).toBe(200)
    pair.a.queries.length = 0
    await pair.a.request('POST', '/api/v1/auth/token/verify', { body: { token: u.access } })
    expect(pair.a.queries).toEqual([])
  })
})

/** A socket of the user's; `registered` once it answered a ping (the server authenticates after the upgrade). */
function socket(t: TestApp, token: string): { registered: Promise<void>; closed: Promise<number> } {
  const ws = new WebSocket(`${t.url.replace('http', 'ws')}/ws/notifications?token=${token}`)
  const registered = new Promise<void>((resolve, reject) => {
    ws.on('message', (data) => {
      if (JSON.parse(frameText(data)).type === 'pong') resolve()
    })
    ws.on('error', reject)
  })
  ws.on('open', () => ws.send(JSON.stringify({ type: 'ping' })))
  const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)))
  return { registered, closed }
}

describe('open sockets', () => {
  it('are closed with 4401 on every instance when the sessions are revoked', async () => {
    const u = await pair.a.user()
    const sockets = [socket(pair.a, u.access), socket(pair.b, u.access)]
    await Promise.all(sockets.map((s) => s.registered))
    const started = Date.now()
    await pair.b.request('POST', '/api/v1/auth/sessions/revoke', { token: u.access })
    expect(await Promise.all(sockets.map((s) => s.closed))).toEqual([4401, 4401])
    expect(Date.now() - started).toBeLessThan(1000)
  })
})

describe('account administration', () => {
  it('is staff only and validates input', async () => {
    const staff = await pair.a.user({ staff: true })
    const u = await pair.a.user()
    expect((await pair.a.request('GET', '/api/v1/users', { token: u.access })).statusCode).toBe(403)
    expect((await pair.a.request('GET', '/api/v1/users')).statusCode).toBe(401)
    const list = await pair.a.request('GET', `/api/v1/users?search=${encodeURIComponent(u.email)}`, { token: staff.access })
    expect(list.json()).toMatchObject({ count: 1, results: [{ id: u.id, email: u.email, is_active: true }] })
    expect((await pair.a.request('GET', '/api/v1/users/999999', { token: staff.access })).statusCode).toBe(404)
    expect((await pair.a.request('GET', '/api/v1/users/abc', { token: staff.access })).statusCode).toBe(404)
    const bad = await pair.a.request('PATCH', `/api/v1/users/${u.id}`, { token: staff.access, body: { is_active: 'no' } })
    expect(bad.statusCode).toBe(400)
    expect(bad.json()).toEqual({ is_active: ['Must be a valid boolean.'] })
  })
})
