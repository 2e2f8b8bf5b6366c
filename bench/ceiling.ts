/**
 * The `ceiling` row's server: bare `node:http`, no framework, answering every request with the bytes of a file
 * (the service's cached product list page 1, fetched by the bench). With CEILING_WORKERS > 1 it forks that many
 * cluster workers sharing the port, as the service does with WEB_CONCURRENCY: the most any read could do on this
 * runtime with that many processes.
 */
import cluster from 'node:cluster'
import { readFileSync } from 'node:fs'
import { createServer } from 'node:http'

const workers = Number(process.env.CEILING_WORKERS ?? 1)
if (workers > 1 && cluster.isPrimary) {
  for (let i = 0; i < workers; i++) cluster.fork()
  process.on('SIGTERM', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGTERM')
    process.exit(0)
  })
} else {
  const body = readFileSync(process.env.CEILING_BODY!)
  const headers = { 'content-type': 'application/json; charset=utf-8', 'content-length': String(body.length) }
  createServer((_request, response) => {
    response.writeHead(200, headers)
    response.end(body)
  }).listen(Number(process.env.PORT), '127.0.0.1')
}
