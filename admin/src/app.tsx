import { useEffect, useState } from 'preact/hooks'
import { LocationProvider, Route, Router, useLocation } from 'preact-iso/router'
import { session, type SessionState } from './session'
import { LiveFeed } from './live'
import { LiveContext, useLiveFeed } from './ui'
import { SignIn } from './pages/sign-in'
import { Overview } from './pages/overview'
import { Orders } from './pages/orders'
import { OrderDetail } from './pages/order-detail'
import { Products } from './pages/products'
import { ProductEdit } from './pages/product-edit'
import { Categories } from './pages/categories'
import { Customers } from './pages/customers'
import { CustomerDetail } from './pages/customer-detail'
import { NotFound } from './pages/not-found'

function useSession(): SessionState {
  const [state, setState] = useState(session.state)
  useEffect(() => {
    const stop = session.subscribe(() => setState(session.state))
    // It may have changed between the first render and this subscription.
    setState(session.state)
    return stop
  }, [])
  return state
}

export function App() {
  const state = useSession()
  if (state.status === 'restoring') return <p class="loading">Loading…</p>
  if (state.status === 'signed-out') return <SignIn notice={state.notice} />
  return (
    <LocationProvider scope="/admin">
      <Console email={state.user.email} />
    </LocationProvider>
  )
}

const sections = [
  ['/admin', 'Overview'],
  ['/admin/orders', 'Orders'],
  ['/admin/products', 'Products'],
  ['/admin/categories', 'Categories'],
  ['/admin/customers', 'Customers'],
] as const

function Console({ email }: { email: string }) {
  const [live] = useState(() => new LiveFeed())
  useEffect(() => {
    live.start()
    return () => live.stop()
  }, [live])
  return (
    <LiveContext.Provider value={live}>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href="/admin">
          Storefront <span>staff</span>
        </a>
        <Nav />
        <div class="who">
          <LiveStatus />
          <span class="email">{email}</span>
          <button type="button" class="link" onClick={() => void session.signOut()}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Router>
          <Route path="/admin" component={Overview} />
          <Route path="/admin/orders" component={Orders} />
          <Route path="/admin/orders/:id" component={OrderDetail} />
          <Route path="/admin/products" component={Products} />
          <Route path="/admin/products/new" component={ProductEdit} />
          <Route path="/admin/products/:id" component={ProductEdit} />
          <Route path="/admin/categories" component={Categories} />
          <Route path="/admin/customers" component={Customers} />
          <Route path="/admin/customers/:id" component={CustomerDetail} />
          <Route default component={NotFound} />
        </Router>
      </main>
    </LiveContext.Provider>
  )
}

function Nav() {
  const { path } = useLocation()
  return (
    <nav class="sections" aria-label="Sections">
      {sections.map(([href, label]) => {
        const current = href === '/admin' ? path === '/admin' || path === '/admin/' : path.startsWith(href)
        return (
          <a href={href} aria-current={current ? 'page' : undefined} key={href}>
            {label}
          </a>
        )
      })}
    </nav>
  )
}

const statusText = { connecting: 'Connecting…', live: 'Live', reconnecting: 'Reconnecting…', stopped: 'Offline' }

function LiveStatus() {
  const live = useLiveFeed()
  const status = live?.status ?? 'stopped'
  return (
    <span class={`live ${status}`} title="Live order feed">
      {statusText[status]}
    </span>
  )
}
