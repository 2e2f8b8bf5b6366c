/**
 * Who is signed in. The access token lives in memory only; the refresh token in sessionStorage, so a reload keeps
 * the session while closing the tab ends it (SECURITY.md explains the trade-off). Requests carry the access token,
 * and a 401 on one is answered by one shared refresh and a single retry, so token expiry never shows.
 */
import createClient from 'openapi-fetch'
import type { paths } from './api/schema'
import type { Me, TokenPair } from './api/types'
import { toProblem } from './api/problem'

const REFRESH_KEY = 'storefront.console.refresh'

export type SessionState =
  | { status: 'restoring' }
  | { status: 'signed-out'; notice?: string }
  | { status: 'signed-in'; user: Me }

export type SignInResult = { ok: true } | { ok: false; message: string; fields?: Record<string, string> }

export const NO_ACCESS = 'This account has no access to the staff console. Sign in with a staff account.'

class Session {
  state: SessionState = { status: 'restoring' }
  private access: string | null = null
  private refreshing: Promise<boolean> | null = null
  private readonly listeners = new Set<() => void>()
  /** The typed API client every page uses; its requests go through `send`. */
  readonly api = createClient<paths>({ fetch: (request) => this.send(request) })

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener)
    return () => this.listeners.delete(listener)
  }

  private set(state: SessionState): void {
    this.state = state
    for (const listener of this.listeners) listener()
  }

  get accessToken(): string | null {
    return this.access
  }

  private get refreshToken(): string | null {
    return sessionStorage.getItem(REFRESH_KEY)
  }

  private keep(tokens: TokenPair): void {
    this.access = tokens.access
    sessionStorage.setItem(REFRESH_KEY, tokens.refresh)
  }

  private forget(notice?: string): void {
    this.access = null
    sessionStorage.removeItem(REFRESH_KEY)
    this.set(notice ? { status: 'signed-out', notice } : { status: 'signed-out' })
  }

  /** On load: a refresh token left by this tab signs it back in. */
  async restore(): Promise<void> {
    if (!this.refreshToken || !(await this.refresh())) return this.forget()
    await this.admit()
  }

  async signIn(email: string, password: string): Promise<SignInResult> {
    const { data, error, response } = await this.api.POST('/api/v1/auth/token', { body: { email, password } })
    if (!data) {
      const problem = toProblem(response.status, error)
      return { ok: false, message: problem.detail ?? 'Check the fields below.', fields: problem.fields }
    }
    this.keep(data)
    return (await this.admit()) ? { ok: true } : { ok: false, message: NO_ACCESS }
  }

  /** Lets staff in; anyone else is signed out again at once (their refresh token revoked) and told why. */
  private async admit(): Promise<boolean> {
    const { data } = await this.api.GET('/api/v1/me')
    if (data?.is_staff) {
      this.set({ status: 'signed-in', user: data })
      return true
    }
    await this.signOut(data ? NO_ACCESS : 'Your session has ended; sign in again.')
    return false
  }

  async signOut(notice?: string): Promise<void> {
    const refresh = this.refreshToken
    const access = this.access
    // Signed out here first, so nothing (the live feed closed by the logout, a page's request) tries to refresh.
    this.forget(notice)
    // Revokes the refresh token; the access token stops working with it (the service bumps the token version).
    if (refresh && access) {
      await this.api
        .POST('/api/v1/auth/logout', { body: { refresh }, headers: { authorization: `Bearer ${access}` } })
        .catch(() => {})
    }
  }

  /** Rotates the refresh token; concurrent callers share one rotation (a refresh token works once). */
  refresh(): Promise<boolean> {
    this.refreshing ??= (async () => {
      const refresh = this.refreshToken
      if (!refresh) return false
      try {
        const response = await fetch('/api/v1/auth/token/refresh', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ refresh }),
        })
        if (!response.ok) return false
        this.keep((await response.json()) as TokenPair)
        return true
      } catch {
        return false
      }
    })().finally(() => (this.refreshing = null))
    return this.refreshing
  }

  /** A refresh that failed while signed in ends the session, with a word on the sign-in page. */
  async refreshOrSignOut(): Promise<boolean> {
    if (await this.refresh()) return true
    if (this.state.status === 'signed-in') this.forget('Your session has ended; sign in again.')
    return false
  }

  private async send(request: Request): Promise<Response> {
    const retry = request.clone()
    const token = this.access
    if (token) request.headers.set('authorization', `Bearer ${token}`)
    const response = await fetch(request)
    if (response.status !== 401 || !token) return response
    if (!(await this.refreshOrSignOut())) return response
    retry.headers.set('authorization', `Bearer ${this.access}`)
    return fetch(retry)
  }
}

export const session = new Session()
export const api = session.api
