import { useState } from 'preact/hooks'
import { useRoute } from 'preact-iso/router'
import { api, session } from '../session'
import { must, problemOf, type Problem } from '../api/problem'
import { Alert, Notice, PageTitle, formatDateTime, useLiveEvents, useLoad } from '../ui'
import { OrderTable, useDebounced } from './orders'

export function CustomerDetail() {
  const { params } = useRoute()
  const id = Number(params.id)
  const account = useLoad(() => must(api.GET('/api/v1/users/{id}', { params: { path: { id } } })), [id])
  const orders = useLoad(
    () => must(api.GET('/api/v1/orders', { params: { query: { user: String(id), page_size: '20' } } })),
    [id],
  )
  useLiveEvents(useDebounced(orders.reload))
  const [problem, setProblem] = useState<Problem | null>(null)
  const [notice, setNotice] = useState<string | null>(null)

  const act = async (question: string, work: () => Promise<string>) => {
    if (!window.confirm(question)) return
    setProblem(null)
    setNotice(null)
    try {
      setNotice(await work())
    } catch (error) {
      setProblem(problemOf(error))
    }
  }

  const a = account.data
  if (!a) {
    return (
      <>
        <PageTitle>Customer #{params.id}</PageTitle>
        {account.problem ? <Alert problem={account.problem} /> : <p class="muted">Loading…</p>}
      </>
    )
  }
  const self = session.state.status === 'signed-in' && session.state.user.id === a.id
  const setActive = (active: boolean) =>
    act(
      active ? `Reactivate ${a.email}?` : `Deactivate ${a.email}? They are signed out everywhere at once and cannot sign in again.`,
      async () => {
        account.set(await must(api.PATCH('/api/v1/users/{id}', { params: { path: { id } }, body: { is_active: active } })))
        return active ? 'Account reactivated.' : 'Account deactivated; every session has ended.'
      },
    )
  const revoke = () =>
    act(`End every session of ${a.email}? They stay able to sign in again.`, async () => {
      await must(api.POST('/api/v1/auth/sessions/revoke', { body: { user_id: id } }))
      return 'Every session of this account has ended.'
    })

  const address = a.address
  return (
    <>
      <PageTitle
        actions={
          !self && (
            <>
              <button type="button" onClick={() => void revoke()}>
                Revoke sessions
              </button>
              {a.is_active ? (
                <button type="button" class="danger" onClick={() => void setActive(false)}>
                  Deactivate
                </button>
              ) : (
                <button type="button" class="primary" onClick={() => void setActive(true)}>
                  Reactivate
                </button>
              )}
            </>
          )
        }
      >
        {a.email}
      </PageTitle>
      <Alert problem={problem} />
      <Notice text={notice} />
      <dl class="facts">
        <div>
          <dt>Name</dt>
          <dd>{[a.first_name, a.last_name].filter(Boolean).join(' ') || '—'}</dd>
        </div>
        <div>
          <dt>Account</dt>
          <dd>
            {a.is_active ? 'active' : 'deactivated'}
            {a.is_staff ? ', staff' : ''}
          </dd>
        </div>
        <div>
          <dt>Joined</dt>
          <dd>{formatDateTime(a.date_joined)}</dd>
        </div>
        <div>
          <dt>Phone</dt>
          <dd>{a.phone || '—'}</dd>
        </div>
        <div>
          <dt>Address</dt>
          <dd>{[address.line1, address.line2, address.postal_code, address.city, address.state, address.country].filter(Boolean).join(', ') || '—'}</dd>
        </div>
      </dl>
      <section aria-labelledby="orders-title">
        <h2 id="orders-title">Orders{orders.data ? ` (${orders.data.count})` : ''}</h2>
        <Alert problem={orders.problem} />
        <OrderTable orders={orders.data?.results ?? []} caption={`Orders of ${a.email}`} loading={!orders.data && !orders.problem} />
        {orders.data?.next && (
          <p>
            <a href={`/admin/orders?user=${id}`}>All of their orders</a>
          </p>
        )}
      </section>
    </>
  )
}
