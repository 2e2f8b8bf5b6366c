import { and, eq, isNull, sql } from 'drizzle-orm'
import { refreshTokens, users } from '../db/schema.js'
import type { Db, Queryable } from '../db/index.js'
import { ApiError, fieldError, notFound, tokenNotValid, validation } from '../http/errors.js'
import type { AccountOf } from '../http/ratelimit.js'
import { type UserRow, findUserByEmail, getAccount, lockUser, revokeAll } from './accounts.js'
import { accountGone } from './guard.js'
import { type PasswordHasher, passwordProblems } from './passwords.js'
import type { SessionDirectory } from './sessions.js'
import type { TokenService } from './tokens.js'

/**
 * Credentials: logging in, rotating, checking and blacklisting token pairs, ending every session, and changing the
 * password that guards them. Each takes the user's row lock first (lockUser), so issuers and revokers never race.
 */

const badCredentials = () =>
  new ApiError(401, { detail: 'No active account found with the given credentials' })

type Versions = Pick<UserRow, 'id' | 'tokenVersion' | 'sessionVersion'>

/** Call with the user's row locked (see lockUser), the versions read under that lock. */
async function issuePair(tokens: TokenService, db: Queryable, user: Versions) {
  const refresh = tokens.issue('refresh', user.id, user.tokenVersion, user.sessionVersion)
  await db.insert(refreshTokens).values({ jti: refresh.jti, userId: user.id, expiresAt: refresh.expiresAt })
  const access = tokens.issue('access', user.id, user.tokenVersion)
  return { access: access.token, refresh: refresh.token }
}

/**
 * The password is verified (slow) outside any transaction; then, with the row locked, the account must still have
 * that password, be active and have had no session revoked meanwhile: a login racing a password change either
 * finishes first (and the change revokes its token) or is refused.
 */
export async function login(ctx: { db: Db; hasher: PasswordHasher; tokens: TokenService }, email: string, password: string) {
  const user = await findUserByEmail(ctx.db, email)
  if (!user) {
    await ctx.hasher.dummyVerify(password)
    throw badCredentials()
  }
  const ok = await ctx.hasher.verify(user.password, password)
  if (!ok || !user.isActive) throw badCredentials()
  return ctx.db.transaction(async (tx) => {
    const locked = await lockUser(tx, user.id, 'share')
    if (!locked || !locked.isActive || locked.password !== user.password || locked.sessionVersion !== user.sessionVersion) {
      throw badCredentials()
    }
    return issuePair(ctx.tokens, tx, locked)
  })
}

/**
 * Rotation: the presented refresh token is blacklisted by a conditional update, so of two concurrent refreshes
 * with one token exactly one finds the row still unrevoked; the other gets 401. A token issued before the
 * account's sessions were ended (its session version is behind) is refused even if its row escaped the revocation.
 */
export async function refresh(ctx: { db: Db; tokens: TokenService }, token: string) {
  const claims = ctx.tokens.verify(token, 'refresh')
  if (!claims) throw tokenNotValid('Token is invalid or expired')
  return ctx.db.transaction(async (tx) => {
    const user = await lockUser(tx, claims.user_id, 'share')
    if (!user || (claims.sver ?? 0) !== user.sessionVersion) throw tokenNotValid('Token is blacklisted')
    const [revoked] = await tx
      .update(refreshTokens)
      .set({ blacklistedAt: new Date() })
      .where(and(eq(refreshTokens.jti, claims.jti), isNull(refreshTokens.blacklistedAt)))
      .returning({ userId: refreshTokens.userId })
    if (!revoked || revoked.userId !== claims.user_id) throw tokenNotValid('Token is blacklisted')
    if (!user.isActive) throw tokenNotValid('User is inactive')
    return issuePair(ctx.tokens, tx, user)
  })
}

/**
 * SimpleJWT's verify with the blacklist app: a signed, unexpired token whose refresh row (if any) is unrevoked, and
 * of the account's current session version, as refresh requires.
 */
export async function verify(ctx: { db: Queryable; tokens: TokenService }, token: string): Promise<void> {
  const claims = ctx.tokens.verify(token)
  if (!claims) throw tokenNotValid('Token is invalid or expired')
  if (claims.token_type === 'refresh') {
    const [row] = await ctx.db
      .select({ id: refreshTokens.id })
      .from(refreshTokens)
      .innerJoin(users, eq(users.id, refreshTokens.userId))
      .where(
        and(eq(refreshTokens.jti, claims.jti), isNull(refreshTokens.blacklistedAt), eq(users.sessionVersion, claims.sver ?? 0)),
      )
    if (!row) throw tokenNotValid('Token is blacklisted')
  }
}

/**
 * Blacklists one refresh token. Access tokens carry no session id, so logout retires all of the user's access
 * tokens (token version); other devices keep their refresh tokens (same session version) and simply refresh.
 */
export async function logout(ctx: { db: Db; tokens: TokenService; sessions: SessionDirectory }, userId: number, token: string): Promise<void> {
  const claims = ctx.tokens.verify(token, 'refresh')
  if (!claims || claims.user_id !== userId) throw tokenNotValid('Token is invalid or expired')
  await ctx.db.transaction(async (tx) => {
    if (!(await lockUser(tx, userId, 'no key update'))) throw accountGone()
    const revoked = await tx
      .update(refreshTokens)
      .set({ blacklistedAt: new Date() })
      .where(and(eq(refreshTokens.jti, claims.jti), isNull(refreshTokens.blacklistedAt)))
      .returning({ id: refreshTokens.id })
    if (!revoked.length) throw tokenNotValid('Token is blacklisted')
    await tx
      .update(users)
      .set({ tokenVersion: sql`${users.tokenVersion} + 1` })
      .where(eq(users.id, userId))
  })
  await ctx.sessions.revoked(userId)
}

/** Ends every session of the user at once, on every instance (open sockets included); 404 for no such user. */
export async function revokeSessions(ctx: { db: Db; sessions: SessionDirectory }, userId: number): Promise<void> {
  await ctx.db.transaction(async (tx) => {
    if (!(await lockUser(tx, userId, 'no key update'))) throw notFound()
    await revokeAll(tx, userId)
  })
  await ctx.sessions.revoked(userId)
}

const wrongOldPassword = () => fieldError('old_password', 'Your old password was entered incorrectly. Please enter it again.')

/**
 * The old password is checked and the new one hashed (both slow) outside the transaction; the hash is written
 * only if the password is still the one checked (a concurrent change makes this one a wrong old password).
 */
export async function changePassword(
  ctx: { db: Db; hasher: PasswordHasher; sessions: SessionDirectory },
  userId: number, oldPassword: string, newPassword: string) {
  const user = await getAccount(ctx.db, userId, accountGone)
  if (!(await ctx.hasher.verify(user.password, oldPassword))) throw wrongOldPassword()
  const problems = passwordProblems(newPassword, {
    email: user.email,
    first_name: user.firstName,
    last_name: user.lastName,
  })
  if (problems.length) throw validation({ new_password: problems })
  const hash = await ctx.hasher.hash(newPassword)
  await ctx.db.transaction(async (tx) => {
    const locked = await lockUser(tx, userId, 'no key update')
    if (!locked) throw accountGone()
    if (locked.password !== user.password) throw wrongOldPassword()
    await tx.update(users).set({ password: hash }).where(eq(users.id, userId))
    await revokeAll(tx, userId)
  })
  await ctx.sessions.revoked(userId)
}

/**
 * Which account a throttled credential request acts on: the signed-in user (password change), the refresh token's
 * user, or the email's account. A login's email is resolved the way login resolves it (PostgreSQL's lower(), which
 * folds more than JavaScript's toLowerCase(): `İ` is `i` to it), so no spelling of an address gets a throttle of its
 * own; only an address with no account is counted by its text. A registration counts by the address it asks for,
 * account or not.
 */
export function rateLimitedAccount(ctx: { db: Queryable; tokens: TokenService }): AccountOf {
  return async (scope, request) => {
    const body = request.body as Record<string, unknown> | null | undefined
    if (scope === 'password') return request.user ? `user:${request.user.id}` : undefined
    if (scope === 'refresh') {
      const claims = typeof body?.refresh === 'string' ? ctx.tokens.verify(body.refresh, 'refresh') : null
      return claims ? `user:${claims.user_id}` : undefined
    }
    if (typeof body?.email !== 'string') return undefined
    const user = scope === 'token' ? await findUserByEmail(ctx.db, body.email) : undefined
    return user ? `user:${user.id}` : `email:${body.email.trim().toLowerCase()}`
  }
}
