import { useState } from 'preact/hooks'
import { api } from '../session'
import { must } from '../api/problem'
import { allCategories } from '../catalogue'
import { Alert, CategoryOptions, Field, PageTitle, Pager, StockLevel, Table, useLoad } from '../ui'

interface Filters {
  search: string
  category: string
  min_price: string
  max_price: string
  in_stock: string
  ordering: string
}

const empty: Filters = { search: '', category: '', min_price: '', max_price: '', in_stock: '', ordering: '' }

const orderings = [
  ['', 'Id'],
  ['name', 'Name A–Z'],
  ['-name', 'Name Z–A'],
  ['price', 'Price, lowest first'],
  ['-price', 'Price, highest first'],
  ['-created_at', 'Newest first'],
  ['created_at', 'Oldest first'],
] as const

export function Products() {
  const categories = useLoad(allCategories, [])
  // What the form shows, and what the table was asked for (the form applies on submit, selects at once).
  const [draft, setDraft] = useState<Filters>(empty)
  const [applied, setApplied] = useState<Filters>(empty)
  const [cursor, setCursor] = useState('')
  const list = useLoad(() => {
    const query = Object.fromEntries(Object.entries(applied).filter(([, v]) => v !== ''))
    const { category, ...rest } = query
    return must(
      api.GET('/api/v1/products', {
        params: { query: { ...rest, ...(category ? { category: [category] } : {}), cursor, page_size: '20' } },
      }),
    )
  }, [applied, cursor])

  const apply = (next: Filters) => {
    setDraft(next)
    setApplied(next)
    setCursor('')
  }
  const edit = (key: keyof Filters, immediate = false) => (e: { currentTarget: { value: string } }) => {
    const next = { ...draft, [key]: e.currentTarget.value }
    if (immediate) apply(next)
    else setDraft(next)
  }
  const fields = list.problem?.fields ?? {}

  return (
    <>
      <PageTitle
        actions={
          <a class="button primary" href="/admin/products/new">
            New product
          </a>
        }
      >
        Products
      </PageTitle>
      <form
        class="filters"
        aria-label="Filter products"
        onSubmit={(e) => {
          e.preventDefault()
          apply(draft)
        }}
      >
        <Field label="Search" error={fields.search}>
          {(p) => <input {...p} type="search" value={draft.search} onInput={edit('search')} placeholder="name or description" />}
        </Field>
        <Field label="Category" error={fields.category}>
          {(p) => (
            <select {...p} value={draft.category} onChange={edit('category', true)}>
              <option value="">All</option>
              <CategoryOptions categories={categories.data} />
            </select>
          )}
        </Field>
        <Field label="Min price" error={fields.min_price}>
          {(p) => <input {...p} inputMode="decimal" value={draft.min_price} onInput={edit('min_price')} size={8} />}
        </Field>
        <Field label="Max price" error={fields.max_price}>
          {(p) => <input {...p} inputMode="decimal" value={draft.max_price} onInput={edit('max_price')} size={8} />}
        </Field>
        <Field label="Stock">
          {(p) => (
            <select {...p} value={draft.in_stock} onChange={edit('in_stock', true)}>
              <option value="">Any</option>
              <option value="true">In stock</option>
              <option value="false">Sold out</option>
            </select>
          )}
        </Field>
        <Field label="Order by" error={fields.ordering}>
          {(p) => (
            <select {...p} value={draft.ordering} onChange={edit('ordering', true)}>
              {orderings.map(([value, label]) => (
                <option value={value} key={value}>
                  {label}
                </option>
              ))}
            </select>
          )}
        </Field>
        <div class="buttons">
          <button type="submit">Apply</button>
          <button type="button" class="link" onClick={() => apply(empty)}>
            Clear
          </button>
        </div>
      </form>
      <Alert problem={list.problem?.detail ? list.problem : null} />
      {list.data && list.data.results.length === 0 && <p class="muted">No products match.</p>}
      {list.data && list.data.results.length > 0 && (
        <Table caption="Products" columns={['Name', 'Category', ['Price', 'num'], ['Stock', 'num']]}>
          {list.data.results.map((p) => (
            <tr key={p.id}>
              <td>
                <a href={`/admin/products/${p.id}`}>{p.name}</a>
              </td>
              <td>{p.category.name}</td>
              <td class="num">{p.price}</td>
              <td class="num"><StockLevel stock={p.stock} /></td>
            </tr>
          ))}
        </Table>
      )}
      {list.data && (
        <Pager label="Product pages" links={list.data} param="cursor" go={setCursor} />
      )}
    </>
  )
}
