import type { Config } from '../config/index.js'
import type { Db } from '../db/index.js'
import type { PubSub } from '../pubsub/index.js'
import { type Guards, createGuards } from './guard.js'
import { type PasswordHasher, createHasher } from './passwords.js'
import { SessionDirectory } from './sessions.js'
import { TokenService } from './tokens.js'

/** What the rest of the service uses of auth, built once per process by the composition root (src/context.ts). */
export interface Auth {
  tokens: TokenService
  hasher: PasswordHasher
  /** The in-process mirror of every user's session state; `sessions.stop()` on shutdown. */
  sessions: SessionDirectory
  guards: Guards
}

export type AuthConfig = Pick<Config, 'jwtSecret' | 'accessTokenLifetime' | 'refreshTokenLifetime' | 'argon2MemoryCost'>

/** Builds auth from the infrastructure it runs on, and starts listening for revocations made on other instances. */
export async function createAuth(deps: { db: Db; pubsub: PubSub; config: AuthConfig }): Promise<Auth> {
  const { config } = deps
  const tokens = new TokenService(config.jwtSecret, { access: config.accessTokenLifetime, refresh: config.refreshTokenLifetime })
  const hasher = createHasher(config.argon2MemoryCost)
  const sessions = new SessionDirectory(deps.db, deps.pubsub)
  await sessions.start()
  return { tokens, hasher, sessions, guards: createGuards({ tokens, sessions }) }
}
