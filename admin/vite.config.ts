import { fileURLToPath } from 'node:url'
import { defineConfig } from 'vite'

// Built into dist/console (beside the compiled server, whose dist/admin holds src/admin) and served by the service itself at /admin (src/admin/console.ts).
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: '/admin/',
  oxc: { jsx: { runtime: 'automatic', importSource: 'preact' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/console', import.meta.url)),
    emptyOutDir: true,
    // Every asset is a file of its own: the page's policy allows no inline script, style or data: URL.
    assetsInlineLimit: 0,
    target: 'es2022',
    // One chunk: nothing to preload, so no preload polyfill either.
    modulePreload: { polyfill: false },
  },
  logLevel: 'warn',
})
