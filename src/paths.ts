import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * The package's root folder, whether this runs as TypeScript from src/ (development, tests) or compiled from dist/
 * (production): both sit one level below it. Runtime files (migrations, the built console) are found from here.
 */
export const packageRoot = fileURLToPath(new URL('..', import.meta.url))

export const fromRoot = (...parts: string[]) => join(packageRoot, ...parts)
