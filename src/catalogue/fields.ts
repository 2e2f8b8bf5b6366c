import { validation, type FieldErrors } from '../http/errors.js'

/** DRF's field rules that the catalogue's writes apply beyond their JSON schemas, with DRF's messages. */

/** DRF's CharField trims whitespace and refuses what is left blank. */
export function trimmedName(name: string | undefined, errors: FieldErrors): string | undefined {
  if (name === undefined) return undefined
  const trimmed = name.trim()
  if (!trimmed) errors.name = ['This field may not be blank.']
  return trimmed
}

export function throwIfInvalid(errors: FieldErrors): void {
  if (Object.keys(errors).length) throw validation(errors)
}
