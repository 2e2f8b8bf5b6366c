import { useEffect, useState } from 'preact/hooks'
import { useLocation, useRoute } from 'preact-iso/router'
import { api } from '../session'
import { must, problemOf, type Problem } from '../api/problem'
import type { Product } from '../api/types'
import { allCategories } from '../catalogue'
import { Alert, CategoryOptions, Field, Notice, PageTitle, useLoad } from '../ui'

interface Form {
  name: string
  description: string
  price: string
  stock: string
  category_id: string
}

const blank: Form = { name: '', description: '', price: '', stock: '0', category_id: '' }

export function ProductEdit() {
  const { params } = useRoute()
  const { route } = useLocation()
  const id = params.id ? Number(params.id) : null
  const categories = useLoad(allCategories, [])
  const product = useLoad(
    async () => (id === null ? null : must(api.GET('/api/v1/products/{id}', { params: { path: { id } } }))),
    [id],
  )
  const [form, setForm] = useState<Form>(blank)
  const [problem, setProblem] = useState<Problem | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)

  useEffect(() => {
    const p = product.data
    setForm(p ? { name: p.name, description: p.description, price: p.price, stock: String(p.stock), category_id: String(p.category.id) } : blank)
  }, [product.data])

  const set = (key: keyof Form) => (e: { currentTarget: { value: string } }) => setForm({ ...form, [key]: e.currentTarget.value })

  const save = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setProblem(null)
    setNotice(null)
    const fields = {
      name: form.name,
      description: form.description,
      price: form.price,
      // An empty choice is sent as 0, which no category has: the API names the field.
      category_id: Number(form.category_id || 0),
    }
    try {
      if (id === null) {
        const created = await must(api.POST('/api/v1/products', { body: { ...fields, stock: Number(form.stock || 0) } }))
        route(`/admin/products/${created.id}`)
      } else {
        product.set(await must(api.PATCH('/api/v1/products/{id}', { params: { path: { id } }, body: fields })))
        setNotice('Saved.')
      }
    } catch (error) {
      setProblem(problemOf(error))
    } finally {
      setBusy(false)
    }
  }

  const remove = async () => {
    if (id === null || !window.confirm(`Delete “${product.data?.name}”? A product that appears in orders is retired instead: hidden from the shop, kept in order history.`)) return
    setProblem(null)
    try {
      await must(api.DELETE('/api/v1/products/{id}', { params: { path: { id } } }))
      route('/admin/products')
    } catch (error) {
      setProblem(problemOf(error))
    }
  }

  if (id !== null && product.problem && !product.data) {
    return (
      <>
        <PageTitle>Product #{id}</PageTitle>
        <Alert problem={product.problem} />
      </>
    )
  }
  if (id !== null && !product.data) return <p class="muted">Loading…</p>
  const errors = problem?.fields ?? {}
  return (
    <>
      <PageTitle
        actions={
          id !== null && (
            <button type="button" class="danger" onClick={() => void remove()}>
              Delete or retire
            </button>
          )
        }
      >
        {id === null ? 'New product' : product.data!.name}
      </PageTitle>
      <div class="columns">
        <form class="stack" onSubmit={save} aria-label={id === null ? 'New product' : 'Edit product'} noValidate>
          <Alert problem={problem?.detail ? problem : null} />
          <Notice text={notice} />
          <Field label="Name" error={errors.name}>
            {(p) => <input {...p} name="name" value={form.name} onInput={set('name')} />}
          </Field>
          <Field label="Description" error={errors.description}>
            {(p) => <textarea {...p} name="description" rows={4} value={form.description} onInput={set('description')} />}
          </Field>
          <Field label="Price" error={errors.price} hint="For example 19.99">
            {(p) => <input {...p} name="price" inputMode="decimal" value={form.price} onInput={set('price')} />}
          </Field>
          <Field label="Category" error={errors.category_id}>
            {(p) => (
              <select {...p} name="category_id" value={form.category_id} onChange={set('category_id')}>
                <option value="">Choose a category</option>
                <CategoryOptions categories={categories.data} />
              </select>
            )}
          </Field>
          {id === null && (
            <Field label="Initial stock" error={errors.stock}>
              {(p) => <input {...p} name="stock" type="number" min={0} step={1} value={form.stock} onInput={set('stock')} />}
            </Field>
          )}
          <div class="buttons">
            <button type="submit" class="primary" disabled={busy}>
              {id === null ? 'Create product' : 'Save changes'}
            </button>
            <a href="/admin/products">Back to products</a>
          </div>
        </form>
        {product.data && <StockAdjust product={product.data} onChange={product.set} />}
      </div>
    </>
  )
}

/** Stock moves by a delta, atomically on the server, so it never races the orders taking units meanwhile. */
function StockAdjust({ product, onChange }: { product: Product; onChange: (p: Product) => void }) {
  const [delta, setDelta] = useState('')
  const [problem, setProblem] = useState<Problem | null>(null)
  const [notice, setNotice] = useState<string | null>(null)
  const [busy, setBusy] = useState(false)
  const adjust = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setProblem(null)
    setNotice(null)
    try {
      const body = { delta: Number(delta) }
      const updated = await must(api.POST('/api/v1/products/{id}/stock', { params: { path: { id: product.id } }, body }))
      onChange(updated)
      setDelta('')
      setNotice(`Stock is now ${updated.stock}.`)
    } catch (error) {
      setProblem(problemOf(error))
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class="stack panel" onSubmit={adjust} aria-labelledby="stock-title" noValidate>
      <h2 id="stock-title">Stock</h2>
      <p>
        <strong class="big" data-testid="stock">
          {product.stock}
        </strong>{' '}
        {product.stock === 0 ? 'sold out' : 'in stock'}
      </p>
      <Alert problem={problem?.detail ? problem : null} />
      <Notice text={notice} />
      <Field label="Adjust by" error={problem?.fields.delta} hint="Units to add; negative to remove">
        {(p) => <input {...p} name="delta" type="number" step={1} value={delta} onInput={(e) => setDelta(e.currentTarget.value)} />}
      </Field>
      <div class="buttons">
        <button type="submit" disabled={busy || delta.trim() === ''}>
          Apply
        </button>
      </div>
    </form>
  )
}
