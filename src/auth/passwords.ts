import argon2 from 'argon2'
import commonPasswords from 'fxa-common-password-list'

export interface PasswordHasher {
  hash(password: string): Promise<string>
  verify(hash: string, password: string): Promise<boolean>
  /** Spends the same time as a real verification, so unknown emails cannot be told apart by timing. */
  dummyVerify(password: string): Promise<void>
}

export function createHasher(memoryCost: number): PasswordHasher {
  const options = { type: argon2.argon2id, memoryCost, timeCost: 2, parallelism: 1 } as const
  let dummy: Promise<string> | undefined
  return {
    hash: (password) => argon2.hash(password, options),
    verify: async (hash, password) => {
      try {
        return await argon2.verify(hash, password)
      } catch {
        return false
      }
    },
    dummyVerify: async (password) => {
      dummy ??= argon2.hash('dummy password for timing', options)
      await argon2.verify(await dummy, password).catch(() => false)
    },
  }
}

/** Python's difflib SequenceMatcher.quick_ratio, which Django's UserAttributeSimilarityValidator uses. */
function quickRatio(a: string, b: string): number {
  const counts = new Map<string, number>()
  for (const ch of b) counts.set(ch, (counts.get(ch) ?? 0) + 1)
  let matches = 0
  for (const ch of a) {
    const left = counts.get(ch) ?? 0
    if (left > 0) {
      matches++
      counts.set(ch, left - 1)
    }
  }
  return a.length + b.length ? (2 * matches) / (a.length + b.length) : 1
}

const MAX_SIMILARITY = 0.7

function tooSimilar(password: string, value: string): boolean {
  const pwd = password.toLowerCase()
  const parts = [value, ...value.split(/\W+/)].map((p) => p.toLowerCase()).filter(Boolean)
  return parts.some((part) => {
    // Django skips attributes so much shorter than the password that no ratio could reach the bound.
    if (pwd.length >= 10 * part.length && part.length < (MAX_SIMILARITY / 2) * pwd.length) return false
    return quickRatio(pwd, part) >= MAX_SIMILARITY
  })
}

/** Django's four default password validators, with their messages. */
export function passwordProblems(
  password: string,
  attributes: { email?: string; first_name?: string; last_name?: string },
): string[] {
  const problems: string[] = []
  const labels: Record<string, string> = { email: 'email address', first_name: 'first name', last_name: 'last name' }
  for (const [attr, value] of Object.entries(attributes)) {
    if (value && tooSimilar(password, value)) {
      problems.push(`The password is too similar to the ${labels[attr]}.`)
      break
    }
  }
  if (password.length < 8) problems.push('This password is too short. It must contain at least 8 characters.')
  if (commonPasswords.test(password.toLowerCase().trim())) problems.push('This password is too common.')
  if (/^\d+$/.test(password)) problems.push('This password is entirely numeric.')
  return problems
}
