import { api } from './session'
import { must } from './api/problem'
import type { Category } from './api/types'

/** Every category, by name (all pages: a shop has tens or hundreds, not millions). */
export async function allCategories(): Promise<Category[]> {
  const out: Category[] = []
  for (let page = 1; ; page++) {
    const data = await must(api.GET('/api/v1/categories', { params: { query: { page: String(page), page_size: '100' } } }))
    out.push(...data.results)
    if (!data.next) return out
  }
}
