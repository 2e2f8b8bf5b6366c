/**
 * What went wrong with a request, in the API's (DRF's) error shapes: `{"detail": ...}` or `{"field": ["message"]}`,
 * with errors not tied to a field under `non_field_errors`.
 */
export interface Problem {
  status: number
  /** The sentence to show above the form or page. */
  detail: string | null
  /** The first message for each field. */
  fields: Record<string, string>
}

export function toProblem(status: number, body: unknown): Problem {
  const fields: Record<string, string> = {}
  let detail: string | null = null
  if (body && typeof body === 'object') {
    for (const [key, value] of Object.entries(body as Record<string, unknown>)) {
      const first: unknown = Array.isArray(value) ? (value as unknown[])[0] : value
      if (key === 'detail' && typeof value === 'string') detail = value
      else if (key === 'non_field_errors' && typeof first === 'string') detail = first
      else if (typeof first === 'string') fields[key] = first
    }
  }
  if (!detail && !Object.keys(fields).length) {
    detail = status === 0 ? 'The service cannot be reached; try again.' : `The service answered ${status}.`
  }
  return { status, detail, fields }
}

/** A request that did not succeed: thrown by `must` so a page can show one message for any failure. */
export class ProblemError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail ?? Object.values(problem.fields)[0] ?? 'Request failed')
  }
}

/** The data of a successful openapi-fetch call, or a ProblemError carrying the API's reasons. */
export async function must<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result
  try {
    result = await call
  } catch {
    throw new ProblemError(toProblem(0, null))
  }
  if (result.error !== undefined || !result.response.ok) throw new ProblemError(toProblem(result.response.status, result.error))
  return result.data as T
}

export function problemOf(error: unknown): Problem {
  if (error instanceof ProblemError) return error.problem
  return { status: 0, detail: error instanceof Error ? error.message : String(error), fields: {} }
}
