import { useRef } from 'preact/hooks'
import { api } from '../session'
import { must } from '../api/problem'
import type { OrderStatus } from '../api/types'
import { Alert, PageTitle, StatusBadge, StockLevel, Table, formatTime, useLiveEvents, useLiveFeed, useLoad } from '../ui'

const LOW_STOCK = 5
const statuses: OrderStatus[] = ['pending', 'shipped', 'delivered', 'cancelled']

function startOfToday(): string {
  const now = new Date()
  return new Date(now.getFullYear(), now.getMonth(), now.getDate()).toISOString()
}

export function Overview() {
  const orders = useLoad(() => must(api.GET('/api/v1/stats/orders', { params: { query: { since: startOfToday() } } })), [])
  const stock = useLoad(() => must(api.GET('/api/v1/stats/stock', { params: { query: { threshold: LOW_STOCK, limit: 8 } } })), [])
  // Each event moves the figures: refetch them, at most a few times a second however busy the shop is.
  const pending = useRef<number | undefined>(undefined)
  useLiveEvents(() => {
    if (pending.current !== undefined) return
    pending.current = window.setTimeout(() => {
      pending.current = undefined
      orders.reload()
      stock.reload()
    }, 300)
  })

  const o = orders.data
  const s = stock.data
  return (
    <>
      <PageTitle>Overview</PageTitle>
      <Alert problem={orders.problem ?? stock.problem} />
      <section aria-labelledby="today">
        <h2 id="today">Today</h2>
        <dl class="cards">
          <div>
            <dt>Orders placed</dt>
            <dd data-testid="placed-today">{o?.placed ?? '…'}</dd>
          </div>
          <div>
            <dt>Revenue</dt>
            <dd>{o?.revenue ?? '…'}</dd>
          </div>
          <div>
            <dt>Awaiting shipment</dt>
            <dd>
              <a href="/admin/orders?status=pending">{o?.awaiting_shipment ?? '…'}</a>
            </dd>
          </div>
          <div>
            <dt>Sold out</dt>
            <dd>{s?.sold_out ?? '…'}</dd>
          </div>
          <div>
            <dt>Low stock (≤ {LOW_STOCK})</dt>
            <dd>{s?.low_stock ?? '…'}</dd>
          </div>
        </dl>
        {o && (
          <p class="by-status">
            Placed today, by status now:
            {statuses.map((status) => (
              <span key={status}>
                <StatusBadge status={status} /> {o.by_status[status]}
              </span>
            ))}
          </p>
        )}
      </section>
      <div class="columns">
        <section aria-labelledby="feed-title">
          <h2 id="feed-title">Live orders</h2>
          <Feed />
        </section>
        <section aria-labelledby="stock-title">
          <h2 id="stock-title">Running out</h2>
          {s && s.products.length === 0 && <p class="muted">Nothing is low on stock.</p>}
          {s && s.products.length > 0 && (
            <Table caption="Lowest stock first" columns={['Product', ['Stock', 'num']]}>
              {s.products.map((p) => (
                <tr key={p.id}>
                  <td>
                    <a href={`/admin/products/${p.id}`}>{p.name}</a>
                  </td>
                  <td class="num"><StockLevel stock={p.stock} /></td>
                </tr>
              ))}
            </Table>
          )}
        </section>
      </div>
    </>
  )
}

function Feed() {
  const live = useLiveFeed()
  const events = live?.events ?? []
  return (
    <>
      {events.length === 0 && <p class="muted">Orders appear here the moment they are placed or change status.</p>}
      <ol class="feed" aria-live="polite" aria-label="Live orders, newest first">
        {events.map((e) => (
          <li key={e.id} class={e.kind === 'order.created' ? 'created' : 'changed'}>
            <time dateTime={e.created_at}>{formatTime(e.created_at)}</time>
            <a href={`/admin/orders/${e.order_id}`}>Order #{e.order_id}</a>
            <span>{e.kind === 'order.created' ? 'placed' : `${e.previous_status} →`}</span>
            <StatusBadge status={e.status} />
          </li>
        ))}
      </ol>
    </>
  )
}
