interface PgError {
  code: string
  constraint?: string
}

const SQLSTATE = /^[0-9A-Z]{5}$/

/** The PostgreSQL error behind `err`: drizzle wraps the driver's error, so the SQLSTATE may sit on a cause. */
export function pgError(err: unknown): PgError | undefined {
  for (let e = err as { code?: unknown; cause?: unknown } | null | undefined, depth = 0; e && depth < 8; e = e.cause as typeof e, depth++) {
    if (typeof e.code === 'string' && SQLSTATE.test(e.code)) return e as PgError
  }
  return undefined
}

export const pgErrorCode = (err: unknown): string | undefined => pgError(err)?.code

/** foreign_key_violation, or restrict_violation (what ON DELETE RESTRICT raises). */
export const isForeignKeyViolation = (err: unknown): boolean => ['23503', '23001'].includes(pgErrorCode(err) ?? '')

/** unique_violation, of `constraint` when given (a driver that does not name the constraint matches any). */
export function isUniqueViolation(err: unknown, constraint?: string): boolean {
  const e = pgError(err)
  return e?.code === '23505' && (constraint === undefined || !e.constraint || e.constraint === constraint)
}
