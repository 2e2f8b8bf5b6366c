import type { FastifyRequest } from 'fastify'
import { notFound } from './errors.js'

export const DEFAULT_PAGE_SIZE = 10
export const MAX_PAGE_SIZE = 100

export interface PageRequest {
  page: number
  pageSize: number
  limit: number
  offset: number
}

export function pageRequest(query: { page?: string | undefined; page_size?: string | undefined }): PageRequest {
  const rawPage = query.page ?? '1'
  const page = rawPage === 'last' ? Number.NaN : Number(rawPage)
  if (!/^\d+$/.test(rawPage) || !Number.isSafeInteger(page) || page < 1) throw notFound('Invalid page.')
  const size = /^\d+$/.test(query.page_size ?? '') ? Number(query.page_size) : DEFAULT_PAGE_SIZE
  const pageSize = size < 1 ? DEFAULT_PAGE_SIZE : Math.min(size, MAX_PAGE_SIZE)
  return { page, pageSize, limit: pageSize, offset: (page - 1) * pageSize }
}

/** Where a page's links point: a request, or a canonical form of it (cached pages must not echo stray parameters). */
export type PageOrigin = Pick<FastifyRequest, 'url' | 'protocol' | 'host'>

/** Absolute URL of this request with `changes` applied to its query string (null deletes a parameter). */
export function selfUrl(request: PageOrigin, changes: Record<string, string | null>): string {
  const url = new URL(request.url, `${request.protocol}://${request.host}`)
  for (const [key, value] of Object.entries(changes)) {
    if (value === null) url.searchParams.delete(key)
    else url.searchParams.set(key, value)
  }
  return url.toString()
}

export interface Page<T> {
  count: number
  next: string | null
  previous: string | null
  results: T[]
}

export function buildPage<T>(request: PageOrigin, page: PageRequest, count: number, results: T[]): Page<T> {
  const last = Math.max(1, Math.ceil(count / page.pageSize))
  if (page.page > last) throw notFound('Invalid page.')
  return {
    count,
    next: page.page < last ? selfUrl(request, { page: String(page.page + 1) }) : null,
    previous: page.page > 1 ? selfUrl(request, { page: page.page === 2 ? null : String(page.page - 1) }) : null,
    results,
  }
}
