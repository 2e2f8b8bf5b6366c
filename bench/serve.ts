/**
 * The service as `npm start` runs it, plus, in the same process, a bare Fastify server whose one route returns the
 * exact bytes of product list page 1: the most any cached read could do on this runtime (the `ceiling` scenario).
 * With WEB_CONCURRENCY > 1 every worker runs both, sharing the two ports as cluster workers do.
 */
import cluster from 'node:cluster'
import Fastify from 'fastify'

const ceilingPort = Number(process.env.CEILING_PORT)
const workers = Number(process.env.WEB_CONCURRENCY ?? 1)
if (ceilingPort && !(cluster.isPrimary && workers > 1)) {
  const source = `http://127.0.0.1:${process.env.PORT}/api/v1/products`
  let body: string | undefined
  const ceiling = Fastify({ logger: false })
  ceiling.get('/ceiling', async (_request, reply) => {
    body ??= await (await fetch(source)).text()
    return reply.type('application/json; charset=utf-8').send(body)
  })
  await ceiling.listen({ host: '127.0.0.1', port: ceilingPort })
}

await import('../src/main.js')
