import { randomUUID } from 'node:crypto'
import { createSigner, createVerifier } from 'fast-jwt'

export type TokenType = 'access' | 'refresh'

export interface Claims {
  token_type: TokenType
  user_id: number
  jti: string
  exp: number
  iat: number
  /** The user's token version when issued: bumping it revokes every token issued before. */
  ver: number
  /** Refresh tokens: the user's session version when issued; absent (older tokens) counts as 0. */
  sver?: number
}

export interface IssuedToken {
  token: string
  jti: string
  expiresAt: Date
}

export class TokenService {
  private readonly signers: Record<TokenType, (payload: object) => string>
  private readonly verifier: (token: string) => Claims

  constructor(
    secret: string,
    private readonly lifetimes: Record<TokenType, number>,
  ) {
    const signer = (seconds: number) => createSigner({ key: secret, algorithm: 'HS256', expiresIn: seconds * 1000 })
    this.signers = { access: signer(lifetimes.access), refresh: signer(lifetimes.refresh) }
    // Pinned to one algorithm: a token signed with "none" or another algorithm is refused.
    this.verifier = createVerifier({
      key: secret,
      algorithms: ['HS256'],
      requiredClaims: ['token_type', 'user_id', 'jti', 'exp', 'iat'],
    }) as (token: string) => Claims
  }

  issue(type: TokenType, userId: number, version: number, sessionVersion = 0): IssuedToken {
    const jti = randomUUID()
    const claims = { token_type: type, user_id: userId, jti, ver: version }
    const token = this.signers[type](type === 'refresh' ? { ...claims, sver: sessionVersion } : claims)
    return { token, jti, expiresAt: new Date(Date.now() + this.lifetimes[type] * 1000) }
  }

  /** The claims of a valid, unexpired token of the given type; null for anything else. */
  verify(token: string, type?: TokenType): Claims | null {
    try {
      const claims = this.verifier(token)
      if (type && claims.token_type !== type) return null
      if (claims.token_type !== 'access' && claims.token_type !== 'refresh') return null
      if (!Number.isSafeInteger(claims.user_id)) return null
      return claims
    } catch {
      return null
    }
  }
}
