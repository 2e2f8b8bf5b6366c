import { notFound, validation, type FieldErrors } from '../http/errors.js'
import { DEFAULT_PAGE_SIZE, type PageRequest, pageRequest } from '../http/pagination.js'
import { PG_INT_MAX } from '../http/schemas.js'
import { parseDecimal, plainDecimal } from './decimal.js'

export const orderings = ['price', '-price', 'name', '-name', 'created_at', '-created_at', 'id', '-id'] as const
export type Ordering = (typeof orderings)[number]
export type SortField = 'price' | 'name' | 'created_at' | 'id'

export interface RawProductQuery {
  category?: string[] | undefined
  min_price?: string | undefined
  max_price?: string | undefined
  in_stock?: string | undefined
  search?: string | undefined
  ordering?: string | undefined
  page?: string | undefined
  page_size?: string | undefined
  cursor?: string | undefined
}

export interface ProductFilters {
  categories: number[]
  minPrice: string | null
  maxPrice: string | null
  inStock: boolean | null
  terms: string[]
}

/** Where a keyset page starts: strictly after (or, going back, strictly before) the row with this sort key and id. */
export interface CursorPosition {
  /** The sort column's value as text (null when ordering by id). */
  value: string | null
  id: number
  backward: boolean
}

export interface ProductListRequest {
  filters: ProductFilters
  ordering: Ordering
  page: PageRequest
  /** Keyset mode: null for page-number pagination; 'start' for the first keyset page. */
  cursor: CursorPosition | 'start' | null
  /**
   * The query string in canonical form: known parameters only, sorted, defaults dropped, values normalized. It is
   * the cache key and the base of the page's next/previous links, so equivalent requests share one cached answer.
   */
  canonical: URLSearchParams
}

const MAX_SEARCH_LENGTH = 200
const MAX_CATEGORIES = 100
const invalidChoice = (value: string) => `Select a valid choice. ${value} is not one of the available choices.`
const TRUE = new Set(['true', '1', 'yes', 'on'])
const FALSE = new Set(['false', '0', 'no', 'off'])

export function sortField(ordering: Ordering): SortField {
  return (ordering.startsWith('-') ? ordering.slice(1) : ordering) as SortField
}

export function isDescending(ordering: Ordering): boolean {
  return ordering.startsWith('-')
}

/** A filter bound: a number of any size Django's form DecimalField would take, normalized for SQL numeric. */
function priceBound(raw: string): string | null {
  const d = raw.length <= 64 ? parseDecimal(raw) : null
  if (!d || Math.abs(d.exponent) > 64) return null
  return plainDecimal(d)
}

/**
 * The trigram index finds a term only through a run of three letters or digits (pg_trgm splits words at anything
 * else): a search made only of shorter terms would read every product. Shorter terms next to such a term are fine,
 * they only filter what the index found.
 */
const indexable = (term: string) => /[\p{L}\p{N}]{3}/u.test(term)
const SHORT_TERMS = 'Ensure at least one search term has 3 or more letters or digits in a row.'

/**
 * The term the trigram index looks up (the others only filter what it found): the longest indexable one, as more
 * trigrams usually match fewer products. A valid search always has one (shorter-only searches are refused).
 */
export function indexTerm(terms: readonly string[]): string {
  return terms.filter(indexable).reduce((best, term) => (term.length > best.length ? term : best), '')
}

/** DRF's SearchFilter: terms separated by whitespace or commas, each must match; case does not matter. */
export function searchTerms(raw: string): string[] {
  const terms = raw
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((t) => t.toLowerCase())
  return [...new Set(terms)].sort()
}

export function parseProductQuery(raw: RawProductQuery): ProductListRequest {
  const errors: FieldErrors = {}
  const canonical = new URLSearchParams()

  const categories = new Set<number>()
  for (const part of (raw.category ?? []).flatMap((v) => v.split(','))) {
    const value = part.trim()
    if (!value) continue
    if (!/^\d{1,10}$/.test(value) || Number(value) > PG_INT_MAX || Number(value) < 1) {
      errors.category = [`“${value}” is not a valid value.`]
      break
    }
    categories.add(Number(value))
  }
  if (categories.size > MAX_CATEGORIES) errors.category = [`Ensure this value has at most ${MAX_CATEGORIES} elements.`]
  const categoryList = [...categories].sort((a, b) => a - b)
  if (categoryList.length) canonical.set('category', categoryList.join(','))

  const bound = (name: 'min_price' | 'max_price'): string | null => {
    const value = raw[name]?.trim()
    if (!value) return null
    const parsed = priceBound(value)
    if (parsed === null) errors[name] = ['Enter a number.']
    return parsed
  }
  const minPrice = bound('min_price')
  const maxPrice = bound('max_price')

  let inStock: boolean | null = null
  const stockRaw = raw.in_stock?.trim().toLowerCase()
  if (stockRaw) {
    if (TRUE.has(stockRaw)) inStock = true
    else if (FALSE.has(stockRaw)) inStock = false
    else errors.in_stock = [invalidChoice(raw.in_stock ?? '')]
  }
  if (inStock !== null) canonical.set('in_stock', String(inStock))
  if (maxPrice !== null) canonical.set('max_price', maxPrice)
  if (minPrice !== null) canonical.set('min_price', minPrice)

  let ordering: Ordering = 'id'
  const orderingRaw = raw.ordering?.trim()
  if (orderingRaw) {
    if ((orderings as readonly string[]).includes(orderingRaw)) ordering = orderingRaw as Ordering
    else errors.ordering = [invalidChoice(orderingRaw)]
  }
  if (ordering !== 'id') canonical.set('ordering', ordering)

  let terms: string[] = []
  if (raw.search !== undefined) {
    if (raw.search.length > MAX_SEARCH_LENGTH) errors.search = [`Ensure this value has at most ${MAX_SEARCH_LENGTH} characters.`]
    else terms = searchTerms(raw.search)
    if (terms.length && !terms.some(indexable)) errors.search = [SHORT_TERMS]
  }

  if (Object.keys(errors).length) throw validation(errors)

  const keyset = raw.cursor !== undefined
  const page = pageRequest(keyset ? { page_size: raw.page_size } : raw)
  let cursor: ProductListRequest['cursor'] = null
  if (keyset) {
    cursor = raw.cursor ? decodeCursor(raw.cursor, ordering) : 'start'
    canonical.set('cursor', raw.cursor ?? '')
  } else if (page.page !== 1) {
    canonical.set('page', String(page.page))
  }
  if (page.pageSize !== DEFAULT_PAGE_SIZE) canonical.set('page_size', String(page.pageSize))
  if (terms.length) canonical.set('search', terms.join(' '))
  canonical.sort()

  return {
    filters: { categories: categoryList, minPrice, maxPrice, inStock, terms },
    ordering,
    page,
    cursor,
    canonical,
  }
}

/** The canonical filters alone (no page, size, ordering or cursor): what a count depends on. */
export function filterKey(request: ProductListRequest): string {
  const filters = new URLSearchParams(request.canonical)
  for (const name of ['cursor', 'ordering', 'page', 'page_size']) filters.delete(name)
  return filters.toString()
}

const invalidCursor = () => notFound('Invalid cursor')
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/

/** Opaque to clients: base64url of [ordering, sort value, id, direction]. Bound to its ordering. */
export function encodeCursor(ordering: Ordering, position: CursorPosition): string {
  return Buffer.from(JSON.stringify([ordering, position.value, position.id, position.backward ? 1 : 0])).toString('base64url')
}

/** A cursor is checked before its values reach SQL: a forged one is "Invalid cursor", never a database error. */
export function decodeCursor(text: string, ordering: Ordering): CursorPosition {
  let decoded: unknown
  try {
    decoded = text.length <= 1024 ? JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) : null
  } catch {
    throw invalidCursor()
  }
  if (!Array.isArray(decoded) || decoded.length !== 4) throw invalidCursor()
  const [o, value, id, direction] = decoded as unknown[]
  if (o !== ordering || !Number.isSafeInteger(id) || (id as number) < 0 || (id as number) > PG_INT_MAX) throw invalidCursor()
  if (direction !== 0 && direction !== 1) throw invalidCursor()
  const field = sortField(ordering)
  const valid =
    field === 'id'
      ? value === null
      : typeof value === 'string' &&
        (field === 'name'
          ? value.length <= 200
          : field === 'price'
            ? parseDecimal(value) !== null && value.length <= 20
            : TIMESTAMP.test(value) && !Number.isNaN(Date.parse(value)))
  if (!valid) throw invalidCursor()
  return { value: value as string | null, id: id as number, backward: direction === 1 }
}
