// @ts-check
import js from '@eslint/js'
import tseslint from 'typescript-eslint'

export default tseslint.config(
  { ignores: ['dist/', 'coverage/', 'drizzle/', 'node_modules/', 'bench/out/', 'admin/src/api/schema.d.ts'] },
  js.configs.recommended,
  ...tseslint.configs.recommendedTypeChecked,
  {
    languageOptions: {
      parserOptions: { projectService: { allowDefaultProject: ['admin/vite.config.ts'] }, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // The rules that catch real bugs here: a promise nobody awaits or catches, a misused one, `any` leaking.
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', ignoreRestSiblings: true }],
      // An async function without await is how an interface that returns a promise is met synchronously.
      '@typescript-eslint/require-await': 'off',
    },
  },
  {
    // Preact calls event handlers and ignores what they return; an async handler there is the usual way to submit.
    files: ['admin/src/**/*.tsx'],
    rules: { '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { attributes: false } }] },
  },
  {
    // Tests read JSON answers (`res.json()` is `any`) and assert on them: the unsafe-any family would flag every
    // assertion without making one safer. Promises and the rest stay checked.
    files: ['test/**/*.ts', 'bench/**/*.ts'],
    rules: {
      '@typescript-eslint/no-unsafe-assignment': 'off',
      '@typescript-eslint/no-unsafe-member-access': 'off',
      '@typescript-eslint/no-unsafe-argument': 'off',
      '@typescript-eslint/no-unsafe-call': 'off',
      '@typescript-eslint/no-unsafe-return': 'off',
      '@typescript-eslint/no-explicit-any': 'off',
      // `res.json() as T` and `res.json<T>()` say the same; the rule wants the second.
      '@typescript-eslint/no-unnecessary-type-assertion': 'off',
    },
  },
  { files: ['**/*.js'], extends: [tseslint.configs.disableTypeChecked] },
)
