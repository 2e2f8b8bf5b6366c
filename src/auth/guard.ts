import type { FastifyRequest } from 'fastify'
import type { AppContext } from '../context.js'
import { forbidden, notAuthenticated, tokenNotValid } from '../http/errors.js'

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
  user(request: FastifyRequest): Promise<void>
  /** Staff only: 401 anonymous, 403 others. */
  staff(request: FastifyRequest): Promise<void>
  /** The user behind an access token, or null (WebSockets, which cannot answer 401). */
  fromToken(token: string): Promise<AuthUser | null>
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

export function createGuards(ctx: AppContext): Guards {
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
