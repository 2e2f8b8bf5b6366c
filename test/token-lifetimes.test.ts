import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import { loadConfig } from '../src/config/index.js'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'

/**
 * Token lifetimes come from ACCESS_TOKEN_LIFETIME and REFRESH_TOKEN_LIFETIME (seconds). Only Date is faked, so the
 * test moves the clock past a lifetime instead of sleeping through it, and the database and sockets run as usual.
 */
const ACCESS = 60
const REFRESH = 600
const fromEnv = loadConfig({ NODE_ENV: 'test', ACCESS_TOKEN_LIFETIME: String(ACCESS), REFRESH_TOKEN_LIFETIME: String(REFRESH) })

let t: TestApp
beforeAll(async () => {
  t = await createTestApp({ config: { accessTokenLifetime: fromEnv.accessTokenLifetime, refreshTokenLifetime: fromEnv.refreshTokenLifetime } })
})
afterAll(async () => {
  await t?.close()
})
afterEach(() => {
  vi.useRealTimers()
})

/** Logs in with the clock stopped, so "seconds after issue" below are exact. */
async function loginAtFrozenClock(): Promise<{ user: TestUser; issuedAt: number }> {
  const user = await t.user()
  const issuedAt = Date.now()
  vi.useFakeTimers({ toFake: ['Date'], now: issuedAt })
  const tokens = await t.request('POST', '/api/v1/auth/token', { body: { email: user.email, password: user.password } })
  expect(tokens.statusCode).toBe(200)
  return { user: { ...user, ...tokens.json<{ access: string; refresh: string }>() }, issuedAt }
}

const me = (access: string) => t.request('GET', '/api/v1/me', { token: access })
const refresh = (token: string) => t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: token } })

describe('token lifetimes from the environment', () => {
  it('reads both settings', () => {
    expect([fromEnv.accessTokenLifetime, fromEnv.refreshTokenLifetime]).toEqual([ACCESS, REFRESH])
  })

  it('accepts an access token until ACCESS_TOKEN_LIFETIME has passed, then refuses it', async () => {
    const { user, issuedAt } = await loginAtFrozenClock()
    vi.setSystemTime(issuedAt + (ACCESS - 1) * 1000)
    expect((await me(user.access)).statusCode).toBe(200)
    vi.setSystemTime(issuedAt + (ACCESS + 1) * 1000)
    const expired = await me(user.access)
    expect(expired.statusCode).toBe(401)
    expect(expired.json()).toEqual({ detail: 'Given token not valid for any token type', code: 'token_not_valid' })
  })

  it('refuses a refresh token once REFRESH_TOKEN_LIFETIME has passed, though its access token is long dead before', async () => {
    const { user, issuedAt } = await loginAtFrozenClock()
    vi.setSystemTime(issuedAt + (REFRESH + 1) * 1000)
    const expired = await refresh(user.refresh)
    expect(expired.statusCode).toBe(401)
    expect(expired.json().code).toBe('token_not_valid')
  })

  it('still refreshes just before REFRESH_TOKEN_LIFETIME', async () => {
    const { user, issuedAt } = await loginAtFrozenClock()
    vi.setSystemTime(issuedAt + (REFRESH - 1) * 1000)
    expect((await me(user.access)).statusCode).toBe(401)
    const renewed = await refresh(user.refresh)
    expect(renewed.statusCode, renewed.body).toBe(200)
    expect((await me(renewed.json().access)).statusCode).toBe(200)
  })
})
