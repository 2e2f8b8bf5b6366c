import { createContext, type ComponentChildren, type JSX } from 'preact'
import { useCallback, useContext, useEffect, useRef, useState } from 'preact/hooks'
import type { OrderStatus } from './api/types'
import { type Problem, problemOf } from './api/problem'
import type { FeedEvent, LiveFeed } from './live'

// ------------------------------------------------------------------------------------------------ loading data

export interface Loaded<T> {
  data: T | undefined
  problem: Problem | null
  loading: boolean
  reload(): void
  /** Shows data the page already has (the answer to its own write), without a refetch. */
  set(data: T): void
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

// ------------------------------------------------------------------------------------------------ paging

/** The value of `param` in a page link of the API (`next`/`previous`), or null at an end. */
export function linkParam(link: string | null, param: string): string | null {
  if (!link) return null
  return new URL(link).searchParams.get(param) ?? ''
}

export function Pager(props: { label: string; previous: (() => void) | null; next: (() => void) | null; children?: ComponentChildren }) {
  return (
    <nav class="pager" aria-label={props.label}>
      <button type="button" disabled={!props.previous} onClick={() => props.previous?.()}>
        ← Previous
      </button>
      <span>{props.children}</span>
      <button type="button" disabled={!props.next} onClick={() => props.next?.()}>
        Next →
      </button>
    </nav>
  )
}

// ------------------------------------------------------------------------------------------------ formatting

const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' })
const time = new Intl.DateTimeFormat(undefined, { timeStyle: 'medium' })

export const formatDateTime = (iso: string) => dateTime.format(new Date(iso))
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
