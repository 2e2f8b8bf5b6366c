import { defineConfig } from 'vitest/config'

// The suite always runs on the embedded defaults (PGlite, in-process cache and pub/sub); with DATABASE_URL and
// REDIS_URL set it runs a second time against those real servers. The staff console is built first when its
// sources changed (the browser tests drive the built console).
const real = Boolean(process.env.DATABASE_URL && process.env.REDIS_URL)
const shared = { include: ['test/**/*.test.ts'], testTimeout: 60_000, hookTimeout: 120_000 }

export default defineConfig({
  test: {
    pool: 'forks',
    projects: [
      { test: { ...shared, name: 'embedded', env: { TEST_BACKEND: 'embedded' }, globalSetup: ['test/admin-build.ts'] } },
      ...(real
        ? [{ test: { ...shared, name: 'real', env: { TEST_BACKEND: 'real' }, globalSetup: ['test/admin-build.ts', 'test/global-setup.ts'] } }]
        : []),
    ],
  },
})
