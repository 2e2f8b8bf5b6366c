import { buildConsole } from '../scripts/admin-build.js'

/** Global setup: the browser tests run against the console as built from the current sources. */
export default async function setup(): Promise<void> {
  await buildConsole({ ifNeeded: true })
}
