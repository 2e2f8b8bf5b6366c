import { and, eq, isNull, sql } from 'drizzle-orm'
import type { AppContext } from '../context.js'
import { type Address, emptyAddress, refreshTokens, users } from '../db/schema.js'
import type { Db, Queryable } from '../db/index.js'
import { isUniqueViolation } from '../db/errors.js'
import { ApiError, fieldError, notFound, tokenNotValid, validation } from '../http/errors.js'
import { accountGone } from './guard.js'
import { type PasswordHasher, passwordProblems } from './passwords.js'
import type { AccountOut, UserOut } from './schemas.js'

type UserRow = typeof users.$inferSelect

export const badCredentials = () =>
  new ApiError(401, { detail: 'No active account found with the given credentials' })

export function serializeAccount(user: UserRow): AccountOut {
  return { ...serializeUser(user), is_active: user.isActive }
}

export function serializeUser(user: UserRow): UserOut {
  return {
    id: user.id,
    email: user.email,
    first_name: user.firstName,
    last_name: user.lastName,
    phone: user.phone,
    address: { ...emptyAddress, ...user.address },
    is_staff: user.isStaff,
    date_joined: user.dateJoined.toISOString(),
  }
}

/** Django's normalize_email: the domain part is case-insensitive, the local part is kept as typed. */
export function normalizeEmail(email: string): string {
  const trimmed = email.trim()
  const at = trimmed.lastIndexOf('@')
  return at < 0 ? trimmed : trimmed.slice(0, at) + trimmed.slice(at).toLowerCase()
}

export async function findUserByEmail(db: Queryable, email: string): Promise<UserRow | undefined> {
  const [user] = await db
    .select()
    .from(users)
    .where(sql`lower(${users.email}) = lower(${email.trim()})`)
  return user
}

/** The account with this id; a missing one is 404, or `missing()` (the signed-in user's vanished account is a 401). */
export async function getAccount(db: Queryable, id: number, missing = () => notFound()): Promise<UserRow> {
  const [user] = await db.select().from(users).where(eq(users.id, id))
  if (!user) throw missing()
  return user
}

/** The signed-in user's account, which may have been deleted since the token was issued (see AccountGone). */
export const getUser = (db: Queryable, id: number) => getAccount(db, id, accountGone)

export async function register(
  ctx: AppContext,
  input: { email: string; password: string; first_name?: string | undefined; last_name?: string | undefined },
): Promise<UserOut> {
  const email = normalizeEmail(input.email)
  const emailTaken = { email: ['user with this email already exists.'] }
  const problems = passwordProblems(input.password, {
    email,
    first_name: input.first_name ?? '',
    last_name: input.last_name ?? '',
  })
  const existing = await findUserByEmail(ctx.db, email)
  if (existing || problems.length) {
    throw validation({ ...(existing ? emailTaken : {}), ...(problems.length ? { password: problems } : {}) })
  }
  const password = await ctx.hasher.hash(input.password)
  try {
    const [user] = await ctx.db
      .insert(users)
      .values({ email, password, firstName: input.first_name ?? '', lastName: input.last_name ?? '' })
      .returning()
    return serializeUser(user!)
  } catch (err) {
    // Two registrations racing for one address: the unique index decides, the loser gets the same 400.
    if (isUniqueViolation(err)) throw validation(emailTaken)
    throw err
  }
}

type Versions = Pick<UserRow, 'id' | 'tokenVersion' | 'sessionVersion'>

/**
 * Lock order, the same for every path that issues or revokes tokens: the user's row first, then refresh_tokens.
 * Issuers (login, refresh) take it FOR SHARE, so one user's devices still log in and refresh side by side; what
 * revokes takes FOR NO KEY UPDATE, which waits for every issuer holding the row and blocks new ones, yet not the
 * foreign-key checks of carts and orders (FOR KEY SHARE). So an issuer either commits its refresh row before the
 * revocation's statements start (and, under READ COMMITTED, each of them sees that row and revokes it) or starts
 * after the revocation committed and reads the new versions.
 */
function lockUser(db: Queryable, userId: number, mode: 'share' | 'no key update') {
  return db.select().from(users).where(eq(users.id, userId)).for(mode).then(([row]) => row)
}

/** Call with the user's row locked (see lockUser), the versions read under that lock. */
async function issuePair(ctx: AppContext, db: Queryable, user: Versions) {
  const refresh = ctx.tokens.issue('refresh', user.id, user.tokenVersion, user.sessionVersion)
  await db.insert(refreshTokens).values({ jti: refresh.jti, userId: user.id, expiresAt: refresh.expiresAt })
  const access = ctx.tokens.issue('access', user.id, user.tokenVersion)
  return { access: access.token, refresh: refresh.token }
}

/**
 * The password is verified (slow) outside any transaction; then, with the row locked, the account must still have
 * that password, be active and have had no session revoked meanwhile: a login racing a password change either
 * finishes first (and the change revokes its token) or is refused.
 */
export async function login(ctx: AppContext, email: string, password: string) {
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
    return issuePair(ctx, tx, locked)
  })
}

/**
 * Rotation: the presented refresh token is blacklisted by a conditional update, so of two concurrent refreshes
 * with one token exactly one finds the row still unrevoked; the other gets 401. A token issued before the
 * account's sessions were ended (its session version is behind) is refused even if its row escaped the revocation.
 */
export async function refresh(ctx: AppContext, token: string) {
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
    return issuePair(ctx, tx, user)
  })
}

/**
 * SimpleJWT's verify with the blacklist app: a signed, unexpired token whose refresh row (if any) is unrevoked, and
 * of the account's current session version, as refresh requires.
 */
export async function verify(ctx: AppContext, token: string): Promise<void> {
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
export async function logout(ctx: AppContext, userId: number, token: string): Promise<void> {
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

export async function updateProfile(
  ctx: AppContext,
  userId: number,
  patch: {
    first_name?: string | undefined
    last_name?: string | undefined
    phone?: string | undefined
    address?: Partial<Address> | undefined
  },
): Promise<UserOut> {
  return ctx.db.transaction(async (tx) => {
    const current = await lockUser(tx, userId, 'no key update')
    if (!current) throw accountGone()
    const changes = {
      ...(patch.first_name !== undefined ? { firstName: patch.first_name } : {}),
      ...(patch.last_name !== undefined ? { lastName: patch.last_name } : {}),
      ...(patch.phone !== undefined ? { phone: patch.phone } : {}),
      ...(patch.address ? { address: { ...emptyAddress, ...current.address, ...patch.address } } : {}),
    }
    // An empty PATCH is a valid no-op (an UPDATE with nothing to set is not valid SQL).
    if (Object.keys(changes).length === 0) return serializeUser(current)
    const [user] = await tx.update(users).set(changes).where(eq(users.id, userId)).returning()
    return serializeUser(user!)
  })
}

/**
 * Every session of the user, with its row locked by the caller (lockUser, 'no key update'): refresh tokens
 * blacklisted (the statement sees every row an issuer committed before the lock was granted), access tokens
 * retired by the token version, and refresh tokens whose row escaped anyway by the session version.
 */
async function revokeAll(db: Queryable, userId: number): Promise<void> {
  await db
    .update(refreshTokens)
    .set({ blacklistedAt: new Date() })
    .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.blacklistedAt)))
  await db
    .update(users)
    .set({ tokenVersion: sql`${users.tokenVersion} + 1`, sessionVersion: sql`${users.sessionVersion} + 1` })
    .where(eq(users.id, userId))
}

/** Ends every session of the user at once, on every instance (open sockets included); 404 for no such user. */
export async function revokeSessions(ctx: AppContext, userId: number): Promise<void> {
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
export async function changePassword(ctx: AppContext, userId: number, oldPassword: string, newPassword: string) {
  const user = await getUser(ctx.db, userId)
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

/** Staff account administration: deactivating or changing staff rights ends the user's sessions at once. */
export async function updateAccount(
  ctx: AppContext,
  userId: number,
  patch: { is_active?: boolean | undefined; is_staff?: boolean | undefined },
): Promise<UserRow> {
  const result = await ctx.db.transaction(async (tx) => {
    const current = await lockUser(tx, userId, 'no key update')
    if (!current) throw notFound()
    const demoted = (patch.is_active === false && current.isActive) || (patch.is_staff !== undefined && patch.is_staff !== current.isStaff)
    if (demoted) await revokeAll(tx, userId)
    const [updated] = await tx
      .update(users)
      .set({
        ...(patch.is_active !== undefined ? { isActive: patch.is_active } : {}),
        ...(patch.is_staff !== undefined ? { isStaff: patch.is_staff } : {}),
      })
      .where(eq(users.id, userId))
      .returning()
    return { updated: updated!, demoted }
  })
  if (result.demoted) await ctx.sessions.revoked(userId)
  return result.updated
}

/**
 * createadmin: creates a staff account, or promotes an existing one and sets its password, which like any password
 * change ends its sessions (the caller tells the session mirror when it runs inside a server).
 */
export async function upsertStaff(db: Db, hasher: PasswordHasher, email: string, password: string) {
  const hash = await hasher.hash(password)
  return db.transaction(async (tx) => {
    const existing = await findUserByEmail(tx, email)
    if (existing && (await lockUser(tx, existing.id, 'no key update'))) {
      await tx.update(users).set({ isStaff: true, isActive: true, password: hash }).where(eq(users.id, existing.id))
      await revokeAll(tx, existing.id)
      return { id: existing.id, created: false, message: `promoted ${existing.email} to staff` }
    }
    const [user] = await tx.insert(users).values({ email: normalizeEmail(email), password: hash, isStaff: true }).returning()
    return { id: user!.id, created: true, message: `created staff account ${user!.email}` }
  })
}
