import { chmod, lstat, mkdir, readdir, rm } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import lockfile from 'proper-lockfile'

/**
 * One process per embedded data folder. PGlite is PostgreSQL compiled into the process: two processes opening one
 * folder each believe they own it, and the second one's writes are lost or corrupt the first one's. Whoever opens
 * the folder (the server, or a CLI when no server runs) holds a lock in it and listens on a control socket there;
 * a second process finds the lock held, and talks to the holder through that socket instead of opening the files.
 */

/** A request to the process holding the folder (one JSON line each way, one request per connection). */
export interface ControlRequest {
  command: string
  [field: string]: unknown
}

export interface ControlReply {
  ok: boolean
  message: string
}

export type ControlHandler = (request: ControlRequest) => Promise<ControlReply>

export interface Holder {
  /** `server`, or the name of the CLI command holding the folder. */
  kind: string
  pid: number
}

export interface DataDirClaim {
  /** Replaces the answer to requests (until then: "busy", naming this process). */
  handle(handler: ControlHandler): void
  /** Makes every file in the folder owner-only again (see `restrict`). */
  restrict(): Promise<void>
  release(): Promise<void>
}

/** The folder is held by another live process: `send` talks to it. */
export class DataDirInUse extends Error {
  constructor(
    readonly dataDir: string,
    readonly holder: Holder,
    private readonly socketPath: string,
  ) {
    const by =
      holder.kind === 'server' ? `a running server (pid ${holder.pid})` : holder.pid ? `\`${holder.kind}\` (pid ${holder.pid})` : 'another process, which does not answer'
    super(`DATA_DIR ${dataDir} is in use by ${by}: one process at a time may open an embedded database`)
    this.name = 'DataDirInUse'
  }

  send(request: ControlRequest): Promise<ControlReply> {
    return exchange(this.socketPath, request) as Promise<ControlReply>
  }
}

/**
 * A holder that died without unlocking (kill -9, power loss) leaves its lock behind; the lock's mtime, refreshed
 * every UPDATE_MS while the holder lives, tells it is stale after STALE_MS. A live holder answers on its socket,
 * which is asked first, so a holder whose event loop is stuck for longer (a long synchronous PGlite statement)
 * is never taken for dead: the kernel accepts the connection even then.
 */
const STALE_MS = 5_000
const UPDATE_MS = 1_000
const WHO_TIMEOUT_MS = 5_000

const lockPath = (dataDir: string) => join(dataDir, 'storefront.lock')
const controlDir = (dataDir: string) => join(dataDir, 'control')
export const socketPath = (dataDir: string) => join(controlDir(dataDir), 'storefront.sock')

/** One request, one answer, on a fresh connection; rejects with the socket error (ENOENT, ECONNREFUSED, ...). */
function exchange(path: string, request: ControlRequest, timeoutMs = 10 * 60_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(path)
    let buffer = ''
    socket.setTimeout(timeoutMs, () => socket.destroy(Object.assign(new Error('no answer'), { code: 'ETIMEDOUT' })))
    socket.on('connect', () => socket.write(`${JSON.stringify(request)}\n`))
    socket.on('data', (chunk) => (buffer += chunk.toString()))
    socket.on('error', reject)
    socket.on('end', () => {
      try {
        resolve(JSON.parse(buffer))
      } catch {
        reject(new Error('the process holding the data folder gave no answer'))
      }
    })
  })
}

/** The live process listening on the folder's socket, or undefined when nobody listens there. */
async function holderOf(dataDir: string): Promise<Holder | undefined> {
  try {
    return (await exchange(socketPath(dataDir), { command: 'who' }, WHO_TIMEOUT_MS)) as Holder
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ECONNREFUSED') return undefined
    // Connected but silent (its event loop busy): alive all the same.
    return { kind: 'unknown', pid: 0 }
  }
}

/**
 * Owner-only, also for a folder made before this rule (its files were created 0644/0666), and for the files PGlite
 * writes into a new folder from its bundled template, which keep the template's modes (0666) whatever the umask.
 */
async function restrict(path: string): Promise<void> {
  const stat = await lstat(path)
  if (stat.isSymbolicLink()) return
  if (stat.isDirectory()) {
    await chmod(path, 0o700)
    for (const entry of await readdir(path)) await restrict(join(path, entry))
  } else if (stat.isFile()) {
    await chmod(path, 0o600)
  }
}

/**
 * Takes the folder for this process (`kind`: `server` or the CLI command) or throws DataDirInUse naming the live
 * holder. Waits at most a little over STALE_MS for the lock of a holder that just died.
 */
export async function claimDataDir(dataDir: string, kind: string): Promise<DataDirClaim> {
  // Everything this process creates from now on (PGlite's files among them) is owner-only.
  process.umask(0o077)
  await mkdir(dataDir, { recursive: true, mode: 0o700 })
  const deadline = Date.now() + STALE_MS * 2
  let unlock: () => Promise<void>
  for (;;) {
    const holder = await holderOf(dataDir)
    if (holder) throw new DataDirInUse(dataDir, holder, socketPath(dataDir))
    try {
      unlock = await lockfile.lock(dataDir, {
        lockfilePath: lockPath(dataDir),
        realpath: false,
        stale: STALE_MS,
        update: UPDATE_MS,
        // Only another process removing the lock (it judged this one dead) compromises it: say so, never throw
        // from a timer (which would end the process with the data folder half-written).
        onCompromised: (err) => process.stderr.write(`storefront: the lock on ${dataDir} was lost (${err.message})\n`),
      })
      break
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ELOCKED') throw err
      // Held, and nobody answers: a holder starting up (not listening yet) or one that died; its lock goes stale.
      if (Date.now() > deadline) throw new DataDirInUse(dataDir, { kind: 'unknown', pid: 0 }, socketPath(dataDir))
      await new Promise((r) => setTimeout(r, 250))
    }
  }

  await restrict(dataDir)
  await mkdir(controlDir(dataDir), { recursive: true, mode: 0o700 })
  // A socket file left by a holder that died; the lock is ours, so nobody else listens there.
  await rm(socketPath(dataDir), { force: true })
  let handler: ControlHandler = async () => ({ ok: false, message: `the embedded database in ${dataDir} is in use by \`${kind}\` (pid ${process.pid}); run this again once it has finished` })
  const server = net.createServer((socket) => {
    let buffer = ''
    socket.on('error', () => {})
    socket.on('data', (chunk) => {
      buffer += chunk.toString()
      const newline = buffer.indexOf('\n')
      if (newline < 0) return
      let request: ControlRequest
      try {
        request = JSON.parse(buffer.slice(0, newline)) as ControlRequest
      } catch {
        socket.end(`${JSON.stringify({ ok: false, message: 'malformed request' })}\n`)
        return
      }
      const answer = request.command === 'who' ? Promise.resolve<unknown>({ kind, pid: process.pid }) : handler(request)
      void answer
        .catch((err: Error) => ({ ok: false, message: err.message }))
        .then((reply) => socket.end(`${JSON.stringify(reply)}\n`))
    })
  })
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(socketPath(dataDir), resolve))
  await chmod(socketPath(dataDir), 0o600)
  server.unref()

  return {
    handle: (next) => {
      handler = next
    },
    restrict: () => restrict(dataDir),
    release: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()))
      await unlock().catch(() => {})
    },
  }
}
