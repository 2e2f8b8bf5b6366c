import { and, asc, count, eq, isNull, sql } from 'drizzle-orm'
import { type Address, emptyAddress, refreshTokens, users } from '../db/schema.js'
import type { Db, Queryable } from '../db/index.js'
import { isUniqueViolation } from '../db/errors.js'
import { notFound, validation } from '../http/errors.js'
import type { PageRequest } from '../http/pagination.js'
import { accountGone } from './guard.js'
import { type PasswordHasher, passwordProblems } from './passwords.js'
import type { SessionDirectory } from './sessions.js'
import type { AccountOut, UserOut } from './schemas.js'

/** Accounts: the users' rows, their profiles and staff administration, and the row lock every session change takes. */

export type UserRow = typeof users.$inferSelect

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

/** One page of accounts by id; with `search`, only those whose email contains it (case-insensitive). */
export async function listAccounts(db: Queryable, page: PageRequest, search: string | undefined): Promise<{ count: number; results: AccountOut[] }> {
  const where = search ? sql`lower(${users.email}) LIKE ${`%${search.toLowerCase().replace(/[\\%_]/g, '\\$&')}%`}` : undefined
  const [rows, [total]] = await Promise.all([
    db.select().from(users).where(where).orderBy(asc(users.id)).limit(page.limit).offset(page.offset),
    db.select({ n: count() }).from(users).where(where),
  ])
  return { count: total?.n ?? 0, results: rows.map(serializeAccount) }
}

export async function register(
  ctx: { db: Queryable; hasher: PasswordHasher },
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

/**
 * Lock order, the same for every path that issues or revokes tokens: the user's row first, then refresh_tokens.
 * Issuers (login, refresh) take it FOR SHARE, so one user's devices still log in and refresh side by side; what
 * revokes takes FOR NO KEY UPDATE, which waits for every issuer holding the row and blocks new ones, yet not the
 * foreign-key checks of carts and orders (FOR KEY SHARE). So an issuer either commits its refresh row before the
 * revocation's statements start (and, under READ COMMITTED, each of them sees that row and revokes it) or starts
 * after the revocation committed and reads the new versions.
 */
export function lockUser(db: Queryable, userId: number, mode: 'share' | 'no key update') {
  return db.select().from(users).where(eq(users.id, userId)).for(mode).then(([row]) => row)
}

export async function updateProfile(
  db: Db,
  userId: number,
  patch: {
    first_name?: string | undefined
    last_name?: string | undefined
    phone?: string | undefined
    address?: Partial<Address> | undefined
  },
): Promise<UserOut> {
  return db.transaction(async (tx) => {
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
export async function revokeAll(db: Queryable, userId: number): Promise<void> {
  await db
    .update(refreshTokens)
    .set({ blacklistedAt: new Date() })
    .where(and(eq(refreshTokens.userId, userId), isNull(refreshTokens.blacklistedAt)))
  await db
    .update(users)
    .set({ tokenVersion: sql`${users.tokenVersion} + 1`, sessionVersion: sql`${users.sessionVersion} + 1` })
    .where(eq(users.id, userId))
}

/** Staff account administration: deactivating or changing staff rights ends the user's sessions at once. */
export async function updateAccount(
  ctx: { db: Db; sessions: SessionDirectory },
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
