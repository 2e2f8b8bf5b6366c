/**
 * Builds the staff console into dist/console: typecheck (against the generated API types), then vite. `--if-needed`
 * skips both while the build is newer than every console source and the lock file; `npm start` and the test run
 * build this way, so nobody ever has to.
 */
import { spawnSync } from 'node:child_process'
import { readdirSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const root = fileURLToPath(new URL('..', import.meta.url))
const consoleDir = join(root, 'admin')
const built = join(root, 'dist/console/index.html')

function newest(path: string): number {
  const stat = statSync(path)
  if (!stat.isDirectory()) return stat.mtimeMs
  return Math.max(0, ...readdirSync(path).map((name) => newest(join(path, name))))
}

function upToDate(): boolean {
  try {
    return statSync(built).mtimeMs > Math.max(newest(consoleDir), newest(join(root, 'package-lock.json')))
  } catch {
    return false
  }
}

export async function buildConsole(options: { ifNeeded?: boolean } = {}): Promise<void> {
  if (options.ifNeeded && upToDate()) return
  const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc')
  const check = spawnSync(process.execPath, [tsc, '-p', join(consoleDir, 'tsconfig.json'), '--noEmit'], { stdio: 'inherit' })
  if (check.status !== 0) throw new Error('the staff console does not typecheck (see above)')
  await build({ configFile: join(consoleDir, 'vite.config.ts') })
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  try {
    await buildConsole({ ifNeeded: process.argv.includes('--if-needed') })
  } catch (err) {
    console.error(`storefront: staff console build failed: ${(err as Error).message}`)
    process.exit(1)
  }
}
