import { afterAll, beforeAll, describe, expect, it, onTestFinished, vi } from 'vitest'
import { eq } from 'drizzle-orm'
import { TokenService } from '../src/auth/tokens.js'
import { users } from '../src/db/schema.js'
import { PASSWORD, type TestApp, createTestApp, uniqueEmail } from './helpers.js'

let t: TestApp
beforeAll(async () => {
  t = await createTestApp()
})
afterAll(async () => {
  await t?.close()
})

describe('register', () => {
  it('creates a user without exposing the password', async () => {
    const email = uniqueEmail()
    const res = await t.request('POST', '/api/v1/auth/register', {
      body: { email, password: PASSWORD, first_name: 'Ada', last_name: 'Lovelace' },
    })
    expect(res.statusCode).toBe(201)
    const body = res.json()
    expect(body).toMatchObject({ email, first_name: 'Ada', last_name: 'Lovelace', is_staff: false, phone: '' })
    expect(body.address).toEqual({ line1: '', line2: '', city: '', state: '', postal_code: '', country: '' })
    expect(body).not.toHaveProperty('password')
    expect(new Date(body.date_joined).toString()).not.toBe('Invalid Date')
  })

  it('refuses an email that exists in another case', async () => {
    const email = uniqueEmail()
    await t.request('POST', '/api/v1/auth/register', { body: { email, password: PASSWORD } })
    const res = await t.request('POST', '/api/v1/auth/register', { body: { email: email.toUpperCase(), password: PASSWORD } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ email: ['user with this email already exists.'] })
  })

  it.each([
    ['short', 'aB3$xy', 'This password is too short. It must contain at least 8 characters.'],
    ['numeric', '73019284561', 'This password is entirely numeric.'],
    ['common', 'password123', 'This password is too common.'],
  ])('refuses a %s password with Django’s message', async (_kind, password, message) => {
    const res = await t.request('POST', '/api/v1/auth/register', { body: { email: uniqueEmail(), password } })
    expect(res.statusCode).toBe(400)
    expect(res.json().password).toContain(message)
  })

  it('refuses a password too similar to the email', async () => {
    const res = await t.request('POST', '/api/v1/auth/register', {
      body: { email: 'margaret.hamilton@example.com', password: 'margarethamilton' },
    })
    expect(res.statusCode).toBe(400)
    expect(res.json().password).toContain('The password is too similar to the email address.')
  })

  it('reports every invalid field at once in DRF shape, and creates nothing', async () => {
    const res = await t.request('POST', '/api/v1/auth/register', { body: { email: 'not-an-email', first_name: 5 } })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({
      email: ['Enter a valid email address.'],
      password: ['This field is required.'],
      first_name: ['Not a valid string.'],
    })
    const [row] = await t.ctx.db.select().from(users).where(eq(users.email, 'not-an-email'))
    expect(row).toBeUndefined()
  })

  it('answers a non-object body with non_field_errors', async () => {
    const res = await t.request('POST', '/api/v1/auth/register', { body: [1, 2] })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({ non_field_errors: ['Invalid data. Expected a dictionary, but got list.'] })
  })
})

describe('tokens', () => {
  it('logs in case-insensitively and returns a pair with the contract claims', async () => {
    const email = uniqueEmail()
    await t.request('POST', '/api/v1/auth/register', { body: { email, password: PASSWORD } })
    const res = await t.request('POST', '/api/v1/auth/token', { body: { email: email.toUpperCase(), password: PASSWORD } })
    expect(res.statusCode).toBe(200)
    const { access, refresh } = res.json()
    const claims = JSON.parse(Buffer.from(access.split('.')[1], 'base64url').toString())
    expect(claims).toMatchObject({ token_type: 'access', user_id: expect.any(Number), jti: expect.any(String) })
    expect(claims.exp - claims.iat).toBe(300)
    const refreshClaims = JSON.parse(Buffer.from(refresh.split('.')[1], 'base64url').toString())
    expect(refreshClaims.token_type).toBe('refresh')
    expect(refreshClaims.exp - refreshClaims.iat).toBe(86400)
  })

  it('answers a wrong password and an unknown email identically', async () => {
    const u = await t.user()
    const wrong = await t.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: 'Wrong-Passphrase-1' } })
    const unknown = await t.request('POST', '/api/v1/auth/token', { body: { email: uniqueEmail('ghost'), password: PASSWORD } })
    for (const res of [wrong, unknown]) {
      expect(res.statusCode).toBe(401)
      expect(res.json()).toEqual({ detail: 'No active account found with the given credentials' })
    }
  })

  it('rotates refresh tokens and refuses the old one', async () => {
    const u = await t.user()
    const first = await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: u.refresh } })
    expect(first.statusCode).toBe(200)
    const pair = first.json()
    expect(pair.refresh).not.toBe(u.refresh)
    const reuse = await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: u.refresh } })
    expect(reuse.statusCode).toBe(401)
    expect(reuse.json().code).toBe('token_not_valid')
    const next = await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: pair.refresh } })
    expect(next.statusCode).toBe(200)
  })

  it('lets exactly one of many concurrent refreshes of one token succeed', async () => {
    const u = await t.user()
    const results = await Promise.all(
      Array.from({ length: 8 }, () => t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: u.refresh } })),
    )
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 401, 401, 401, 401, 401, 401, 401])
  })

  it('refuses an access token as a refresh token, and garbage', async () => {
    const u = await t.user()
    for (const refresh of [u.access, 'garbage', `${u.refresh}x`]) {
      const res = await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh } })
      expect(res.statusCode).toBe(401)
      expect(res.json().code).toBe('token_not_valid')
    }
  })

  it('verifies valid tokens and refuses garbage and blacklisted ones', async () => {
    const u = await t.user()
    expect((await t.request('POST', '/api/v1/auth/token/verify', { body: { token: u.access } })).json()).toEqual({})
    expect((await t.request('POST', '/api/v1/auth/token/verify', { body: { token: u.refresh } })).statusCode).toBe(200)
    const garbage = await t.request('POST', '/api/v1/auth/token/verify', { body: { token: 'a.b.c' } })
    expect(garbage.statusCode).toBe(401)
    expect(garbage.json()).toMatchObject({ code: 'token_not_valid' })
    await t.request('POST', '/api/v1/auth/logout', { token: u.access, body: { refresh: u.refresh } })
    expect((await t.request('POST', '/api/v1/auth/token/verify', { body: { token: u.refresh } })).statusCode).toBe(401)
  })

  it('refuses expired tokens', async () => {
    const u = await t.user()
    const shortLived = new TokenService(t.ctx.config.jwtSecret, { access: 1, refresh: 1 })
    const issuedAt = Date.now()
    vi.useFakeTimers({ toFake: ['Date'], now: issuedAt })
    onTestFinished(() => void vi.useRealTimers())
    const access = shortLived.issue('access', u.id, 0).token
    expect((await t.request('GET', '/api/v1/me', { token: access })).statusCode).toBe(200)
    vi.setSystemTime(issuedAt + 1_001)
    const res = await t.request('GET', '/api/v1/me', { token: access })
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual({ detail: 'Given token not valid for any token type', code: 'token_not_valid' })
  })

  it('refuses a token signed with another secret or algorithm', async () => {
    const u = await t.user()
    const forged = new TokenService('x'.repeat(48), { access: 300, refresh: 300 }).issue('access', u.id, 0).token
    expect((await t.request('GET', '/api/v1/me', { token: forged })).statusCode).toBe(401)
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    const payload = forged.split('.')[1]
    expect((await t.request('GET', '/api/v1/me', { token: `${header}.${payload}.` })).statusCode).toBe(401)
  })
})

describe('logout', () => {
  it('answers 205 and the refresh token can never be used again', async () => {
    const u = await t.user()
    const res = await t.request('POST', '/api/v1/auth/logout', { token: u.access, body: { refresh: u.refresh } })
    expect(res.statusCode).toBe(205)
    expect(res.body).toBe('')
    const again = await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: u.refresh } })
    expect(again.statusCode).toBe(401)
  })

  it('needs authentication and refuses another user’s token', async () => {
    const a = await t.user()
    const b = await t.user()
    expect((await t.request('POST', '/api/v1/auth/logout', { body: { refresh: a.refresh } })).statusCode).toBe(401)
    const other = await t.request('POST', '/api/v1/auth/logout', { token: a.access, body: { refresh: b.refresh } })
    expect(other.statusCode).toBe(401)
    expect((await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: b.refresh } })).statusCode).toBe(200)
  })
})

describe('profile', () => {
  it('needs credentials', async () => {
    const res = await t.request('GET', '/api/v1/me')
    expect(res.statusCode).toBe(401)
    expect(res.json()).toEqual({ detail: 'Authentication credentials were not provided.' })
    const bad = await t.request('GET', '/api/v1/me', { token: 'nonsense' })
    expect(bad.statusCode).toBe(401)
    expect(bad.json()).toEqual({ detail: 'Given token not valid for any token type', code: 'token_not_valid' })
  })

  it('patches partially, merges the nested address and ignores read-only fields', async () => {
    const u = await t.user()
    const first = await t.request('PATCH', '/api/v1/me', {
      token: u.access,
      body: { first_name: 'Grace', phone: '+1 555 0100', address: { line1: '1 Main St', city: 'Arlington' } },
    })
    expect(first.statusCode).toBe(200)
    const second = await t.request('PATCH', '/api/v1/me/', {
      token: u.access,
      body: { address: { postal_code: '22201' }, email: 'hacker@example.com', is_staff: true, id: 999 },
    })
    expect(second.statusCode).toBe(200)
    expect(second.json()).toMatchObject({
      id: u.id,
      email: u.email,
      first_name: 'Grace',
      phone: '+1 555 0100',
      is_staff: false,
      address: { line1: '1 Main St', line2: '', city: 'Arlington', state: '', postal_code: '22201', country: '' },
    })
    expect((await t.request('GET', '/api/v1/me', { token: u.access })).json()).toEqual(second.json())
  })

  it('validates nested fields in DRF shape', async () => {
    const u = await t.user()
    const res = await t.request('PATCH', '/api/v1/me', {
      token: u.access,
      body: { first_name: 'x'.repeat(151), address: { city: 7 } },
    })
    expect(res.statusCode).toBe(400)
    expect(res.json()).toEqual({
      first_name: ['Ensure this field has no more than 150 characters.'],
      address: { city: ['Not a valid string.'] },
    })
  })
})

describe('password change', () => {
  it('checks the old password and the new one’s strength', async () => {
    const u = await t.user()
    const wrong = await t.request('POST', '/api/v1/me/password', {
      token: u.access,
      body: { old_password: 'Nope-Nope-123', new_password: 'Another-Passphrase-9' },
    })
    expect(wrong.statusCode).toBe(400)
    expect(wrong.json()).toEqual({ old_password: ['Your old password was entered incorrectly. Please enter it again.'] })
    const weak = await t.request('POST', '/api/v1/me/password', {
      token: u.access,
      body: { old_password: u.password, new_password: '12345678' },
    })
    expect(weak.statusCode).toBe(400)
    expect(weak.json().new_password).toContain('This password is entirely numeric.')
  })

  it('revokes every refresh and access token issued before', async () => {
    const u = await t.user()
    const otherSession = (await t.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: u.password } })).json()
    const res = await t.request('POST', '/api/v1/me/password', {
      token: u.access,
      body: { old_password: u.password, new_password: 'Brand-New-Passphrase-7' },
    })
    expect(res.statusCode).toBe(204)
    for (const refresh of [u.refresh, otherSession.refresh]) {
      expect((await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh } })).statusCode).toBe(401)
    }
    expect((await t.request('GET', '/api/v1/me', { token: u.access })).statusCode).toBe(401)
    const old = await t.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: u.password } })
    expect(old.statusCode).toBe(401)
    const fresh = await t.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: 'Brand-New-Passphrase-7' } })
    expect(fresh.statusCode).toBe(200)
    expect((await t.request('GET', '/api/v1/me', { token: fresh.json().access })).statusCode).toBe(200)
  })
})

describe('deactivated users', () => {
  it('are locked out of every door', async () => {
    const u = await t.user()
    const staff = await t.user({ staff: true })
    expect((await t.request('GET', '/api/v1/me', { token: u.access })).statusCode).toBe(200)
    const res = await t.request('PATCH', `/api/v1/users/${u.id}`, { token: staff.access, body: { is_active: false } })
    expect(res.statusCode).toBe(200)
    expect(res.json()).toMatchObject({ id: u.id, is_active: false })
    expect((await t.request('GET', '/api/v1/me', { token: u.access })).statusCode).toBe(401)
    expect((await t.request('POST', '/api/v1/auth/token/refresh', { body: { refresh: u.refresh } })).statusCode).toBe(401)
    const login = await t.request('POST', '/api/v1/auth/token', { body: { email: u.email, password: u.password } })
    expect(login.statusCode).toBe(401)
    expect(login.json()).toEqual({ detail: 'No active account found with the given credentials' })
  })
})
