import { useState } from 'preact/hooks'
import { api } from '../session'
import { must } from '../api/problem'
import { Alert, count, Field, PageTitle, Pager, Table, formatDateTime, useLoad } from '../ui'

export function Customers() {
  const [draft, setDraft] = useState('')
  const [search, setSearch] = useState('')
  const [page, setPage] = useState('')
  const list = useLoad(
    () => must(api.GET('/api/v1/users', { params: { query: { page: page || '1', page_size: '20', ...(search ? { search } : {}) } } })),
    [search, page],
  )
  return (
    <>
      <PageTitle>Customers</PageTitle>
      <form
        class="filters"
        aria-label="Search accounts"
        onSubmit={(e) => {
          e.preventDefault()
          setSearch(draft.trim())
          setPage('')
        }}
      >
        <Field label="Email contains" error={list.problem?.fields.search}>
          {(p) => <input {...p} type="search" value={draft} onInput={(e) => setDraft(e.currentTarget.value)} />}
        </Field>
        <div class="buttons">
          <button type="submit">Search</button>
        </div>
      </form>
      <Alert problem={list.problem?.detail ? list.problem : null} />
      {list.data && list.data.results.length === 0 && <p class="muted">No accounts match.</p>}
      {list.data && list.data.results.length > 0 && (
        <Table caption="Accounts" columns={['Email', 'Name', 'Joined', 'Account']}>
          {list.data.results.map((u) => (
            <tr key={u.id}>
              <td>
                <a href={`/admin/customers/${u.id}`}>{u.email}</a>
              </td>
              <td>{[u.first_name, u.last_name].filter(Boolean).join(' ') || '—'}</td>
              <td>{formatDateTime(u.date_joined)}</td>
              <td>
                {u.is_active ? 'active' : <span class="badge cancelled">deactivated</span>} {u.is_staff && <span class="badge staff">staff</span>}
              </td>
            </tr>
          ))}
        </Table>
      )}
      {list.data && (
        <Pager label="Account pages" links={list.data} param="page" go={setPage}>
          {count(list.data.count, 'account', 'accounts')}
        </Pager>
      )}
    </>
  )
}
