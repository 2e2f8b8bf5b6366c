import { existsSync } from 'node:fs'
import { join } from 'node:path'
import { fromRoot } from '../paths.js'
import type { FastifyPluginAsync, FastifyReply } from 'fastify'
import fastifyStatic from '@fastify/static'
import { headersOf } from '../http/security.js'

export const CONSOLE_PATH = '/admin'
/** Where `npm run build:admin` (vite) writes the console (beside the compiled server); hashed files go to assets/. */
export const CONSOLE_DIR = fromRoot('dist', 'console')

/**
 * The console loads its own script and stylesheet and talks to its own origin only ('self' covers the same-origin
 * WebSocket in CSP Level 3); nothing inline, nothing from elsewhere, no framing, and DOM sinks take no strings.
 */
const consoleHeaders = headersOf({
  contentSecurityPolicy: {
    useDefaults: false,
    directives: {
      defaultSrc: ["'none'"],
      scriptSrc: ["'self'"],
      styleSrc: ["'self'"],
      imgSrc: ["'self'"],
      connectSrc: ["'self'"],
      formAction: ["'self'"],
      baseUri: ["'none'"],
      frameAncestors: ["'none'"],
      requireTrustedTypesFor: ["'script'"],
    },
  },
})

const YEAR_MS = 365 * 86_400_000

/**
 * The staff console, registered with prefix CONSOLE_PATH: hashed assets cached for a year (a new build has new names), and index.html for every other
 * path under /admin (the console's own routes), revalidated on every load so a new build is picked up at once.
 */
export const consoleRoutes: FastifyPluginAsync = async (app) => {
  // Every route of this plugin, the static ones included, answers with the console's policy rather than the API's.
  app.addHook('onRoute', (route) => {
    route.config = { ...(route.config as object), securityHeaders: consoleHeaders } as never
  })
  await app.register(fastifyStatic, {
    root: join(CONSOLE_DIR, 'assets'),
    prefix: '/assets/',
    maxAge: YEAR_MS,
    immutable: true,
    index: false,
    dotfiles: 'ignore',
  })

  const page = async (_request: unknown, reply: FastifyReply) => {
    if (!existsSync(join(CONSOLE_DIR, 'index.html'))) {
      return reply.code(503).send({ detail: 'The staff console is not built: run `npm run build:admin` (npm start does).' })
    }
    return reply.header('cache-control', 'no-cache').sendFile('index.html', CONSOLE_DIR, { cacheControl: false })
  }
  app.get('', { schema: { hide: true } }, page)
  app.get('/*', { schema: { hide: true } }, page)
  // A missing asset is a plain 404 (the app's handler would call it a 405, the wildcard route being a GET).
  app.setNotFoundHandler((_request, reply) => reply.code(404).send({ detail: 'Not found.' }))
}
