/**
 * Token issuing (login, refresh) racing what ends sessions (password change, POST /auth/sessions/revoke): once the
 * revocation has answered, no token issued before or during it works. Each race is run many times, in parallel,
 * at varied small offsets.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'

let t: TestApp
beforeAll(async () => {
  // Hashing slow enough (a few ms) that a login's password check overlaps the change it races.
  t = await createTestApp({ config: { argon2MemoryCost: 8192 } })
})
afterAll(async () => {
  await t?.close()
})

const TRIALS = 24
const NEW_PASSWORD = 'Fresh-Passphrase-88'
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
/** Offsets from 0 to 45 ms, spread over the trials. */
const offset = (trial: number) => (trial * 7) % 46

interface Pair {
  access: string
  refresh: string
}

const refresh = (token: string) => t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: token } })
const me = (access: string) => t.request('GET', '/api/v1/me', { token: access }).then((r) => r.statusCode)

/** Users for the trials, registered a few at a time. */
async function users(n: number): Promise<TestUser[]> {
  const list: TestUser[] = []
  for (let i = 0; i < n; i += 8) list.push(...(await Promise.all(Array.from({ length: Math.min(8, n - i) }, () => t.user()))))
  return list
}

/** What still works, after the revocation answered, among the tokens an attacker or a racing login obtained. */
async function survivors(pairs: Pair[]): Promise<string[]> {
  const alive: string[] = []
  for (const pair of pairs) {
    if ((await me(pair.access)) !== 401) alive.push(`access ${pair.access.slice(-8)}`)
    const res = await refresh(pair.refresh)
    if (res.statusCode !== 401) alive.push(`refresh ${pair.refresh.slice(-8)} -> ${res.statusCode}`)
  }
  return alive
}

/**
 * An attacker rotating a stolen refresh token in a loop while `revoke` runs; returns every pair minted. The loop
 * ends when a refresh is refused, or (a bug) when it still succeeds a few times after the revocation answered.
 */
async function rotateDuring(stolen: string, delayMs: number, revoke: () => Promise<number>): Promise<{ minted: Pair[]; revokeStatus: number }> {
  const minted: Pair[] = []
  let answered = false
  let afterwards = 0
  const attacker = (async () => {
    let current = stolen
    while (!answered || afterwards++ < 5) {
      const res = await refresh(current)
      if (res.statusCode !== 200) return
      const pair = res.json() as Pair
      minted.push(pair)
      current = pair.refresh
    }
  })()
  await sleep(delayMs)
  const revokeStatus = await revoke()
  answered = true
  await attacker
  return { minted, revokeStatus }
}

describe('revocation races', () => {
  it('a login with the old password racing a password change yields no token that outlives the change', async () => {
    const victims = await users(TRIALS + 1)
    const changePassword = (u: TestUser) =>
      t.request('POST', '/api/v1/me/password', { token: u.access, body: { old_password: u.password, new_password: NEW_PASSWORD } })
    // How long a change takes here: the logins start at offsets spread over it (and a little past it).
    const started = Date.now()
    expect((await changePassword(victims.pop()!)).statusCode).toBe(204)
    const span = (Date.now() - started) * 1.2
    const results: { login: number; alive: string[] }[] = []
    // A few at a time: all at once, the hashing would queue and every login would finish before every change.
    for (let i = 0; i < TRIALS; i += 4) {
      results.push(
        ...(await Promise.all(
          victims.slice(i, i + 4).map(async (u, j) => {
            const change = changePassword(u)
            await sleep(((i + j) / TRIALS) * span)
            const login = await t.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: u.password } })
            expect((await change).statusCode).toBe(204)
            return { login: login.statusCode, alive: login.statusCode === 200 ? await survivors([login.json() as Pair]) : [] }
          }),
        )),
      )
    }
    expect(results.every((r) => r.login === 200 || r.login === 401)).toBe(true)
    expect(results.flatMap((r) => r.alive)).toEqual([])
  })

  it('a stolen refresh token rotated in a loop does not survive a password change', async () => {
    const victims = await users(TRIALS)
    const results = await Promise.all(
      victims.map((u, trial) =>
        rotateDuring(u.refresh, offset(trial), async () =>
          (await t.request('POST', '/api/v1/me/password', { token: u.access, body: { old_password: u.password, new_password: NEW_PASSWORD } })).statusCode,
        ),
      ),
    )
    expect(results.map((r) => r.revokeStatus)).toEqual(results.map(() => 204))
    // The race was run: the attacker did rotate before the change in most trials.
    expect(results.filter((r) => r.minted.length > 0).length).toBeGreaterThan(TRIALS / 2)
    expect(await survivors(results.flatMap((r) => r.minted))).toEqual([])
  })

  it('a stolen refresh token rotated in a loop does not survive POST /auth/sessions/revoke', async () => {
    const victims = await users(TRIALS)
    const results = await Promise.all(
      victims.map((u, trial) =>
        rotateDuring(u.refresh, offset(trial), async () => (await t.request('POST', '/api/v1/auth/sessions/revoke', { token: u.access })).statusCode),
      ),
    )
    expect(results.map((r) => r.revokeStatus)).toEqual(results.map(() => 204))
    expect(results.filter((r) => r.minted.length > 0).length).toBeGreaterThan(TRIALS / 2)
    expect(await survivors(results.flatMap((r) => r.minted))).toEqual([])
  })
})
