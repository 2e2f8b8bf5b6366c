import { useState } from 'preact/hooks'
import { api } from '../session'
import { must, problemOf, type Problem } from '../api/problem'
import type { Category } from '../api/types'
import { Alert, count, Field, Notice, Pager, PageTitle, useLoad } from '../ui'

export function Categories() {
  const [page, setPage] = useState('')
  const list = useLoad(
    () => must(api.GET('/api/v1/categories', { params: { query: { page: page || '1', page_size: '50' } } })),
    [page],
  )
  const [problem, setProblem] = useState<Problem | null>(null)
  const [notice, setNotice] = useState<string | null>(null)

  const remove = async (category: Category) => {
    if (!window.confirm(`Delete the category “${category.name}”?`)) return
    setProblem(null)
    setNotice(null)
    try {
      await must(api.DELETE('/api/v1/categories/{id}', { params: { path: { id: category.id } } }))
      setNotice(`Deleted “${category.name}”.`)
      list.reload()
    } catch (error) {
      const p = problemOf(error)
      setProblem({ ...p, detail: `“${category.name}” was not deleted: ${p.detail ?? 'the service refused.'}` })
    }
  }

  return (
    <>
      <PageTitle>Categories</PageTitle>
      <div class="columns">
        <section aria-labelledby="all-title">
          <h2 id="all-title">All categories</h2>
          <Alert problem={problem ?? list.problem} />
          <Notice text={notice} />
          {list.data && list.data.results.length === 0 && <p class="muted">No categories yet.</p>}
          <ul class="rows">
            {list.data?.results.map((c) => (
              <CategoryRow
                key={c.id}
                category={c}
                onRenamed={(renamed) => {
                  setNotice(`Renamed to “${renamed.name}”.`)
                  list.reload()
                }}
                onDelete={() => void remove(c)}
              />
            ))}
          </ul>
          {list.data && (
            <Pager label="Category pages" links={list.data} param="page" go={setPage}>
              {count(list.data.count, 'category', 'categories')}
            </Pager>
          )}
        </section>
        <NewCategory
          onCreated={(c) => {
            setProblem(null)
            setNotice(`Created “${c.name}”.`)
            list.reload()
          }}
        />
      </div>
    </>
  )
}

function CategoryRow(props: { category: Category; onRenamed: (c: Category) => void; onDelete: () => void }) {
  const { category } = props
  const [editing, setEditing] = useState(false)
  const [name, setName] = useState(category.name)
  const [problem, setProblem] = useState<Problem | null>(null)
  const save = async (event: Event) => {
    event.preventDefault()
    try {
      const renamed = await must(api.PATCH('/api/v1/categories/{id}', { params: { path: { id: category.id } }, body: { name } }))
      setEditing(false)
      setProblem(null)
      props.onRenamed(renamed)
    } catch (error) {
      setProblem(problemOf(error))
    }
  }
  if (editing) {
    return (
      <li>
        <form class="inline" onSubmit={save} aria-label={`Rename ${category.name}`} noValidate>
          <Field label="New name" error={problem?.fields.name ?? problem?.detail ?? undefined}>
            {(p) => <input {...p} value={name} onInput={(e) => setName(e.currentTarget.value)} autoFocus />}
          </Field>
          <div class="buttons">
            <button type="submit" class="primary">
              Save
            </button>
            <button
              type="button"
              class="link"
              onClick={() => {
                setEditing(false)
                setName(category.name)
                setProblem(null)
              }}
            >
              Cancel
            </button>
          </div>
        </form>
      </li>
    )
  }
  return (
    <li>
      <div>
        <strong>{category.name}</strong>
        {category.description && <p class="muted">{category.description}</p>}
      </div>
      <div class="buttons">
        <button type="button" onClick={() => setEditing(true)} aria-label={`Rename ${category.name}`}>
          Rename
        </button>
        <button type="button" class="danger" onClick={props.onDelete} aria-label={`Delete ${category.name}`}>
          Delete
        </button>
      </div>
    </li>
  )
}

function NewCategory({ onCreated }: { onCreated: (c: Category) => void }) {
  const [name, setName] = useState('')
  const [description, setDescription] = useState('')
  const [problem, setProblem] = useState<Problem | null>(null)
  const [busy, setBusy] = useState(false)
  const create = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    try {
      const created = await must(api.POST('/api/v1/categories', { body: { name, description } }))
      setName('')
      setDescription('')
      setProblem(null)
      onCreated(created)
    } catch (error) {
      setProblem(problemOf(error))
    } finally {
      setBusy(false)
    }
  }
  return (
    <form class="stack panel" onSubmit={create} aria-labelledby="new-category" noValidate>
      <h2 id="new-category">New category</h2>
      <Alert problem={problem?.detail ? problem : null} />
      <Field label="Name" error={problem?.fields.name}>
        {(p) => <input {...p} name="name" value={name} onInput={(e) => setName(e.currentTarget.value)} />}
      </Field>
      <Field label="Description" error={problem?.fields.description}>
        {(p) => <textarea {...p} name="description" rows={3} value={description} onInput={(e) => setDescription(e.currentTarget.value)} />}
      </Field>
      <div class="buttons">
        <button type="submit" class="primary" disabled={busy}>
          Create category
        </button>
      </div>
    </form>
  )
}
