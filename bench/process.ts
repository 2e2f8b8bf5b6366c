/** Child processes the bench measures (the service, the ceiling server): started, awaited until they answer, stopped. */
import { spawn } from 'node:child_process'
import { createServer } from 'node:net'

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })
}

export interface Running {
  stop(): Promise<void>
}

/** Runs a script (TypeScript with the tsx loader) and waits until `readyUrl` answers 2xx (60 s at most). */
export async function startNode(script: string, env: Record<string, string>, readyUrl: string, nodeArgs: string[] = []): Promise<Running> {
  const loader = script.endsWith('.ts') ? ['--import', 'tsx'] : []
  const child = spawn(process.execPath, [...nodeArgs, ...loader, script], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const deadline = Date.now() + 60_000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${script} exited with ${child.exitCode} while starting`)
    try {
      if ((await fetch(readyUrl)).ok) break
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`${script} did not answer ${readyUrl} within 60 s`)
    }
    await new Promise((r) => setTimeout(r, 200))
  }
  return {
    stop: () =>
      new Promise((resolve) => {
        if (child.exitCode !== null) return resolve()
        child.once('exit', () => resolve())
        child.kill('SIGTERM')
      }),
  }
}
