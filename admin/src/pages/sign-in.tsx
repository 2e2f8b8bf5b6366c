import { useState } from 'preact/hooks'
import { session } from '../session'
import { Alert, Field } from '../ui'

export function SignIn({ notice }: { notice?: string | undefined }) {
  const [email, setEmail] = useState('')
  const [password, setPassword] = useState('')
  const [busy, setBusy] = useState(false)
  const [message, setMessage] = useState<string | null>(notice ?? null)
  const [fields, setFields] = useState<Record<string, string>>({})

  const submit = async (event: Event) => {
    event.preventDefault()
    setBusy(true)
    setMessage(null)
    const result = await session.signIn(email, password)
    // Signed in: the session's change replaces this page.
    if (!result.ok) {
      setBusy(false)
      setMessage(result.message)
      setFields(result.fields ?? {})
    }
  }

  return (
    <main class="sign-in" id="main">
      <form onSubmit={submit} aria-labelledby="sign-in-title">
        <h1 id="sign-in-title">Storefront staff console</h1>
        <p>Sign in with a staff account.</p>
        <Alert>{message}</Alert>
        <Field label="Email" error={fields.email}>
          {(p) => (
            <input {...p} type="email" name="email" autocomplete="username" required value={email} onInput={(e) => setEmail(e.currentTarget.value)} />
          )}
        </Field>
        <Field label="Password" error={fields.password}>
          {(p) => (
            <input
              {...p}
              type="password"
              name="password"
              autocomplete="current-password"
              required
              value={password}
              onInput={(e) => setPassword(e.currentTarget.value)}
            />
          )}
        </Field>
        <button type="submit" class="primary" disabled={busy}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  )
}
