/**
 * Waiting on a condition instead of sleeping for a guessed time: a test proceeds as soon as the state it needs is
 * there, and fails with what it waited for when the state never comes (so a slow machine only makes it slower).
 */
export async function until(what: string, check: () => boolean | Promise<boolean>, timeoutMs = 10_000, intervalMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Waits until `read` gives a value, and returns it. */
export async function valueOf<T>(what: string, read: () => T | undefined | Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  let value: T | undefined
  await until(what, async () => (value = await read()) !== undefined, timeoutMs)
  return value!
}
