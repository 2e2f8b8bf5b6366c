import { PageTitle } from '../ui'

export function NotFound() {
  return (
    <>
      <PageTitle>Not found</PageTitle>
      <p>
        There is no such page in the console. <a href="/admin">Back to the overview</a>.
      </p>
    </>
  )
}
