import { defineConfig } from 'vitest/config'

/**
 * Three projects. `fast` and `slow` run on the embedded defaults (PGlite, in-process cache and pub/sub); `slow` holds
 * the files that start processes or a browser, build, fuzz or bench, and runs after `fast` so a quick failure shows
 * first. `real` runs, against the PostgreSQL and Redis of DATABASE_URL and REDIS_URL, the files whose behaviour
 * depends on real servers: cut connections, races between connections, two instances sharing a cache and pub/sub,
 * several processes on one database.
 */
const realServers = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL)

const files = (names: string[]) => names.map((name) => `test/${name}.test.ts`)

const slow = files([
  'admin-console', // a browser
  'bench',
  'commands',
  'config', // starts the server as a process
  'createadmin',
  'datadir',
  'fuzz',
  'hardening',
  'notifications-cli',
  'outage', // waits out retry back-offs
  'production', // npm run build, then node dist/
  'revocation-races', // many trials of each race
  'shutdown',
])

/** Every test of these needs real servers. */
const realOnlyNames = ['cluster', 'connection-loss', 'notifications-order', 'notifications-outage', 'orders-concurrency', 'pubsub']
const realOnly = files(realOnlyNames)

const real = files([
  ...realOnlyNames,
  'bench', // pgbench and redis-benchmark against the servers
  'catalogue-cache', // two instances, one cache
  'catalogue-l1', // the first level kept exact by the Redis invalidation feed
  'catalogue-list-shapes', // named prepared statements on node-postgres
  'createadmin', // a promotion's revocation published to running instances
  'hardening', // rate-limit counters shared through Redis
  'hostile', // pool exhaustion, Redis key lifetimes
  'notifications', // pushes across instances
  'order-notifications',
  'orders', // place_order on the server's own PostgreSQL
  'orders-placement',
  'outage', // PostgreSQL or Redis cut and back
  'revocation', // revocations across instances
  'revocation-races',
  'shutdown', // draining real pools and subscriptions
  'staff-stream',
])

const shared = { testTimeout: 60_000, hookTimeout: 120_000 }
const embedded = { ...shared, env: { TEST_BACKEND: 'embedded' } }

export default defineConfig({
  test: {
    pool: 'forks',
    projects: [
      { test: { ...embedded, name: 'fast', include: ['test/**/*.test.ts'], exclude: [...slow, ...realOnly] } },
      // The staff console is built first when its sources changed: the browser tests drive the built console.
      {
        test: {
          ...embedded,
          name: 'slow',
          include: slow,
          globalSetup: ['test/admin-build.ts'],
          sequence: { groupOrder: 2 },
        },
      },
      ...(realServers
        ? [{ test: { ...shared, name: 'real', include: real, env: { TEST_BACKEND: 'real' }, globalSetup: ['test/global-setup.ts'], sequence: { groupOrder: 1 } } }]
        : []),
    ],
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      reporter: ['text-summary'],
      reportOnFailure: true,
    },
  },
})
