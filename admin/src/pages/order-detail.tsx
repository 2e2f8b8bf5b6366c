import { useState } from 'preact/hooks'
import { useRoute } from 'preact-iso/router'
import { api } from '../session'
import { must, problemOf, type Problem } from '../api/problem'
import type { OrderStatus } from '../api/types'
import { Alert, Notice, PageTitle, StatusBadge, Table, formatDateTime, useLiveEvents, useLoad } from '../ui'

/** The moves the API allows from each status, and what their buttons say. */
const moves: Record<OrderStatus, Array<{ to: OrderStatus; label: string }>> = {
  pending: [
    { to: 'shipped', label: 'Mark shipped' },
    { to: 'cancelled', label: 'Cancel order' },
  ],
  shipped: [{ to: 'delivered', label: 'Mark delivered' }],
  delivered: [],
  cancelled: [],
}

export function OrderDetail() {
  const { params } = useRoute()
  const id = Number(params.id)
  const loaded = useLoad(() => must(api.GET('/api/v1/orders/{id}', { params: { path: { id } } })), [id])
  const [problem, setProblem] = useState<Problem | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  useLiveEvents((event) => event.order_id === id && loaded.reload())

  const shown = loaded.data

  const move = async (to: OrderStatus) => {
    if (to === 'cancelled' && !window.confirm(`Cancel order #${id}? Its stock goes back to the shelves.`)) return
    setBusy(true)
    setProblem(null)
    try {
      const updated = await must(api.PATCH('/api/v1/orders/{id}/status', { params: { path: { id } }, body: { status: to } }))
      loaded.set(updated)
      setNotice(`Order #${id} is now ${updated.status}; the customer has been notified.`)
    } catch (error) {
      setProblem(problemOf(error))
      loaded.reload()
    } finally {
      setBusy(false)
    }
  }

  if (loaded.problem && !shown) {
    return (
      <>
        <PageTitle>Order #{params.id}</PageTitle>
        <Alert problem={loaded.problem} />
      </>
    )
  }
  if (!shown) return <p class="muted">Loading…</p>
  const address = shown.shipping_address
  return (
    <>
      <PageTitle
        actions={moves[shown.status].map((m) => (
          <button type="button" key={m.to} class={m.to === 'cancelled' ? 'danger' : 'primary'} disabled={busy} onClick={() => void move(m.to)}>
            {m.label}
          </button>
        ))}
      >
        Order #{shown.id}
      </PageTitle>
      <Alert problem={problem} />
      <Notice text={notice} />
      <dl class="facts">
        <div>
          <dt>Status</dt>
          <dd>
            <StatusBadge status={shown.status} />
          </dd>
        </div>
        <div>
          <dt>Customer</dt>
          <dd>
            <a href={`/admin/customers/${shown.user_id}`}>#{shown.user_id}</a>
          </dd>
        </div>
        <div>
          <dt>Placed</dt>
          <dd>{formatDateTime(shown.created_at)}</dd>
        </div>
        <div>
          <dt>Total</dt>
          <dd>{shown.total_price}</dd>
        </div>
      </dl>
      <div class="columns">
        <section aria-labelledby="items-title">
          <h2 id="items-title">Items</h2>
          <Table caption="Items" columns={['Product', ['Unit price', 'num'], ['Quantity', 'num'], ['Subtotal', 'num']]}>
            {shown.items.map((item) => (
              <tr key={item.product_id}>
                <td>
                  <a href={`/admin/products/${item.product_id}`}>{item.product_name}</a>
                </td>
                <td class="num">{item.unit_price}</td>
                <td class="num">{item.quantity}</td>
                <td class="num">{item.subtotal}</td>
              </tr>
            ))}
          </Table>
        </section>
        <section aria-labelledby="ship-title">
          <h2 id="ship-title">Shipping address</h2>
          <address>
            {[address.line1, address.line2, [address.postal_code, address.city].filter(Boolean).join(' '), address.state, address.country]
              .filter(Boolean)
              .map((line, i) => (
                <span key={i}>
                  {line}
                  <br />
                </span>
              ))}
          </address>
          <h2 id="history-title">History</h2>
          <ol class="history" aria-labelledby="history-title">
            {shown.status_history.map((h, i) => (
              <li key={i}>
                <StatusBadge status={h.status} /> <time dateTime={h.at}>{formatDateTime(h.at)}</time>
              </li>
            ))}
          </ol>
        </section>
      </div>
    </>
  )
}
