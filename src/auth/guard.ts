import type { FastifyRequest } from 'fastify'
import { eq } from 'drizzle-orm'
import type { Queryable } from '../db/index.js'
import { users } from '../db/schema.js'
import { pgErrorCode } from '../db/errors.js'
import { ApiError, forbidden, notAuthenticated, tokenNotValid } from '../http/errors.js'
import type { SessionDirectory } from './sessions.js'
import type { TokenService } from './tokens.js'

export interface AuthUser {
  id: number
  isStaff: boolean
  /** Expiry of the access token that authenticated this request (seconds since the epoch). */
  tokenExp: number
}

declare module 'fastify' {
  interface FastifyRequest {
    user: AuthUser | null
  }
  interface FastifyInstance {
    guards: Guards
  }
}

export interface Guards {
  /** Any signed-in, active user; 401 otherwise. */
  user: (request: FastifyRequest) => Promise<void>
  /** Staff only: 401 anonymous, 403 others. */
  staff: (request: FastifyRequest) => Promise<void>
  /** The user behind an access token, or null (WebSockets, which cannot answer 401). */
  fromToken: (token: string) => Promise<AuthUser | null>
}

/**
 * The token of an `Authorization: Bearer <token>` header: undefined when there are no bearer credentials (no header,
 * or another scheme such as Basic, which SimpleJWT also treats as none), '' when the bearer header is malformed.
 */
export function bearerToken(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization
  if (!header) return undefined
  const [scheme, token] = header.split(' ')
  if (scheme?.toLowerCase() !== 'bearer') return undefined
  return token ?? ''
}

export function createGuards(ctx: { tokens: TokenService; sessions: SessionDirectory }): Guards {
  const fromToken = async (token: string): Promise<AuthUser | null> => {
    const claims = ctx.tokens.verify(token, 'access')
    if (!claims) return null
    // A deactivated user or a revoked token version is refused at once, without a query per request.
    const row = await ctx.sessions.get(claims.user_id)
    if (!row || !row.isActive || (claims.ver ?? 0) !== row.tokenVersion) return null
    return { id: claims.user_id, isStaff: row.isStaff, tokenExp: claims.exp }
  }

  const authenticate = async (request: FastifyRequest): Promise<AuthUser> => {
    const token = bearerToken(request)
    if (token === undefined) throw notAuthenticated()
    const user = token ? await fromToken(token) : null
    if (!user) throw tokenNotValid()
    request.user = user
    return user
  }

  return {
    fromToken,
    user: async (request) => {
      await authenticate(request)
    },
    staff: async (request) => {
      const user = await authenticate(request)
      if (!user.isStaff) throw forbidden()
    },
  }
}

/** The authenticated user of a route guarded by `guards.user` or `guards.staff`. */
export function currentUser(request: FastifyRequest): AuthUser {
  if (!request.user) throw notAuthenticated()
  return request.user
}

/** The signed-in user's account does not exist any more (deleted while its access token is still valid). */
class AccountGone extends ApiError {
  constructor() {
    super(401, { detail: 'User not found', code: 'token_not_valid' })
  }
}

export const accountGone = () => new AccountGone()

/**
 * The error handler's hook for a signed-in request that found its account gone: a read of the account
 * (AccountGone) or a write whose foreign key to it failed (23503, after checking the account really is missing).
 * The user is dropped from every instance's session mirror at once, so the token is refused from the next request
 * on rather than for up to the mirror's lifetime, and the answer is 401 like any revoked token.
 */
export async function accountGoneAnswer(
  ctx: { db: Queryable; sessions: SessionDirectory },
  err: unknown,
  request: FastifyRequest,
): Promise<ApiError | undefined> {
  const user = request.user
  if (!user || !(err instanceof AccountGone || pgErrorCode(err) === '23503')) return undefined
  if (!(err instanceof AccountGone)) {
    const [row] = await ctx.db.select({ id: users.id }).from(users).where(eq(users.id, user.id))
    if (row) return undefined
  }
  await ctx.sessions.revoked(user.id)
  return tokenNotValid('User not found')
}
