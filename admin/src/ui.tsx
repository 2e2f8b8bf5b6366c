import { createContext, type ComponentChildren, type JSX } from 'preact'
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks'
import type { Category, OrderStatus } from './api/types'
import { type Problem, problemOf } from './api/problem'
import type { FeedEvent, LiveFeed } from './live'

// ------------------------------------------------------------------------------------------------ loading data

export interface Loaded<T> {
  data: T | undefined
  problem: Problem | null
  loading: boolean
  reload: () => void
  /** Shows data the page already has (the answer to its own write), without a refetch. */
  set: (data: T) => void
}

/** Runs `load` when `deps` change (and on reload); a slower earlier answer never overwrites a later one. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data: T | undefined; problem: Problem | null; loading: boolean }>({
    data: undefined,
    problem: null,
    loading: true,
  })
  const [tick, setTick] = useState(0)
  const latest = useRef(0)
  useEffect(() => {
    const call = ++latest.current
    setState((s) => ({ ...s, loading: true }))
    load().then(
      (data) => call === latest.current && setState({ data, problem: null, loading: false }),
      (error: unknown) => call === latest.current && setState((s) => ({ ...s, problem: problemOf(error), loading: false })),
    )
  }, [...deps, tick])
  const reload = useCallback(() => setTick((t) => t + 1), [])
  const set = useCallback((data: T) => {
    latest.current++
    setState({ data, problem: null, loading: false })
  }, [])
  return { ...state, reload, set }
}

// ------------------------------------------------------------------------------------------------ live feed

export const LiveContext = createContext<LiveFeed | null>(null)

/** Calls `onEvent` for each event of the staff stream while the component is shown. */
export function useLiveEvents(onEvent: (event: FeedEvent) => void): void {
  const live = useContext(LiveContext)
  const handler = useRef(onEvent)
  handler.current = onEvent
  useEffect(() => live?.subscribe((event) => event && handler.current(event)), [live])
}

/** Re-renders on every change of the stream (events and status). */
export function useLiveFeed(): LiveFeed | null {
  const live = useContext(LiveContext)
  const [, setTick] = useState(0)
  useEffect(() => live?.subscribe(() => setTick((t) => t + 1)), [live])
  return live
}

// ------------------------------------------------------------------------------------------------ forms

let fieldIds = 0

interface FieldProps {
  label: string
  error?: string | undefined
  hint?: string
  children: (props: { id: string; 'aria-invalid'?: 'true'; 'aria-describedby'?: string }) => JSX.Element
}

/** A labelled control with its error (the API's message for that field) right under it. */
export function Field({ label, error, hint, children }: FieldProps) {
  const id = useRef(`f${++fieldIds}`).current
  const described = [hint && `${id}-hint`, error && `${id}-error`].filter(Boolean).join(' ')
  return (
    <div class={error ? 'field invalid' : 'field'}>
      <label for={id}>{label}</label>
      {children({ id, ...(error ? { 'aria-invalid': 'true' as const } : {}), ...(described ? { 'aria-describedby': described } : {}) })}
      {hint && (
        <small id={`${id}-hint`} class="hint">
          {hint}
        </small>
      )}
      {error && (
        <small id={`${id}-error`} class="error">
          {error}
        </small>
      )}
    </div>
  )
}

export function Alert({ problem, children }: { problem?: Problem | null; children?: ComponentChildren }) {
  const text = children ?? problem?.detail
  if (!text) return null
  return (
    <p class="alert" role="alert">
      {text}
    </p>
  )
}

/** A polite announcement of what just succeeded. */
export function Notice({ text }: { text: string | null }) {
  return (
    <p class="notice" role="status">
      {text}
    </p>
  )
}

export function StatusBadge({ status }: { status: OrderStatus }) {
  return <span class={`badge ${status}`}>{status}</span>
}

export function StockLevel({ stock }: { stock: number }) {
  return stock === 0 ? <span class="badge cancelled">sold out</span> : <>{stock}</>
}

export function CategoryOptions({ categories }: { categories: Category[] | undefined }) {
  return (
    <>
      {categories?.map((c) => (
        <option value={String(c.id)} key={c.id}>
          {c.name}
        </option>
      ))}
    </>
  )
}

/** A column heading; `num` right-aligns a column of figures. */
export type Column = string | [label: string, align: 'num']

/** A data table in a box of its own that scrolls sideways on a narrow screen; the caption is for screen readers. */
export function Table({ caption, columns, children }: { caption: string; columns: Column[]; children: ComponentChildren }) {
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            {columns.map((column) =>
              typeof column === 'string' ? (
                <th scope="col" key={column}>
                  {column}
                </th>
              ) : (
                <th scope="col" class="num" key={column[0]}>
                  {column[0]}
                </th>
              ),
            )}
          </tr>
        </thead>
        <tbody>{children}</tbody>
      </table>
    </div>
  )
}

// ------------------------------------------------------------------------------------------------ paging

interface PagerProps {
  label: string
  /** The list's `next` and `previous` links, as the API answered them. */
  links: { next: string | null; previous: string | null }
  /** What the links page by: `page` numbers, or keyset `cursor`s. */
  param: 'page' | 'cursor'
  /** Shows the page the link names: its `param`, '' for the first page (whose link leaves it out). */
  go: (value: string) => void
  children?: ComponentChildren
}

/** Previous and next buttons that follow the API's own page links. */
export function Pager({ label, links, param, go, children }: PagerProps) {
  const follow = (link: string | null) => link && (() => go(new URL(link).searchParams.get(param) ?? ''))
  const previous = follow(links.previous)
  const next = follow(links.next)
  return (
    <nav class="pager" aria-label={label}>
      <button type="button" disabled={!previous} onClick={() => previous && previous()}>
        ← Previous
      </button>
      <span>{children}</span>
      <button type="button" disabled={!next} onClick={() => next && next()}>
        Next →
      </button>
    </nav>
  )
}

// ------------------------------------------------------------------------------------------------ formatting

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const time = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' })

export const formatDateTime = (iso: string) => dateTime.format(new Date(iso))
export const count = (n: number, one: string, many: string) => `${n} ${n === 1 ? one : many}`
export const formatTime = (iso: string) => time.format(new Date(iso))

export function PageTitle({ children, actions }: { children: ComponentChildren; actions?: ComponentChildren }) {
  useEffect(() => {
    document.title = `${typeof children === 'string' ? children : 'Staff'} · Storefront staff console`
  }, [children])
  return (
    <div class="title">
      <h1>{children}</h1>
      {actions && <div class="actions">{actions}</div>}
    </div>
  )
}
