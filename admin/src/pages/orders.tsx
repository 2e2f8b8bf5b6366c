import { useRef } from 'preact/hooks'
import { useLocation } from 'preact-iso/router'
import { api } from '../session'
import { must } from '../api/problem'
import type { Order, OrderStatus } from '../api/types'
import { Alert, count, Field, PageTitle, Pager, StatusBadge, Table, formatDateTime, useLiveEvents, useLoad } from '../ui'

export const orderStatuses: OrderStatus[] = ['pending', 'shipped', 'delivered', 'cancelled']

/** Refetches after a burst of live events, once. */
export function useDebounced(run: () => void, ms = 300): () => void {
  const timer = useRef<number | undefined>(undefined)
  const latest = useRef(run)
  latest.current = run
  return () => {
    window.clearTimeout(timer.current)
    timer.current = window.setTimeout(() => latest.current(), ms)
  }
}

export function Orders() {
  const { query, path, route } = useLocation()
  const status = query.status ?? ''
  const user = query.user ?? ''
  const page = query.page ?? '1'
  const list = useLoad(
    () =>
      must(
        api.GET('/api/v1/orders', {
          params: { query: { page, page_size: '20', ...(status ? { status } : {}), ...(user ? { user } : {}) } },
        }),
      ),
    [status, user, page],
  )
  const reload = useDebounced(list.reload)
  useLiveEvents(reload)

  const go = (changes: Record<string, string>) => {
    const next = new URLSearchParams({ ...query, ...changes })
    for (const [key, value] of [...next]) if (!value) next.delete(key)
    route(`${path}${next.size ? `?${next}` : ''}`, true)
  }

  return (
    <>
      <PageTitle>Orders</PageTitle>
      <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter orders">
        <Field label="Status">
          {(p) => (
            <select {...p} value={status} onChange={(e) => go({ status: e.currentTarget.value, page: '' })}>
              <option value="">Any</option>
              {orderStatuses.map((s) => (
                <option value={s} key={s}>
                  {s}
                </option>
              ))}
            </select>
          )}
        </Field>
        <Field label="Customer id" error={list.problem?.fields.user}>
          {(p) => (
            <input
              {...p}
              inputMode="numeric"
              value={user}
              placeholder="any"
              onChange={(e) => go({ user: e.currentTarget.value.trim(), page: '' })}
            />
          )}
        </Field>
      </form>
      <Alert problem={list.problem?.detail ? list.problem : null} />
      <OrderTable orders={list.data?.results ?? []} caption="Orders, newest first" loading={list.loading && !list.data} />
      {list.data && (
        <Pager label="Order pages" links={list.data} param="page" go={(page) => go({ page })}>
          {count(list.data.count, 'order', 'orders')}
        </Pager>
      )}
    </>
  )
}

export function OrderTable({ orders, caption, loading }: { orders: Order[]; caption: string; loading?: boolean }) {
  if (loading) return <p class="muted">Loading…</p>
  if (!orders.length) return <p class="muted">No orders.</p>
  return (
    <Table caption={caption} columns={['Order', 'Placed', 'Customer', 'Status', ['Items', 'num'], ['Total', 'num']]}>
      {orders.map((o) => (
        <tr key={o.id}>
          <td>
            <a href={`/admin/orders/${o.id}`}>#{o.id}</a>
          </td>
          <td>{formatDateTime(o.created_at)}</td>
          <td>
            <a href={`/admin/customers/${o.user_id}`}>#{o.user_id}</a>
          </td>
          <td>
            <StatusBadge status={o.status} />
          </td>
          <td class="num">{o.items.reduce((n, i) => n + i.quantity, 0)}</td>
          <td class="num">{o.total_price}</td>
        </tr>
      ))}
    </Table>
  )
}
