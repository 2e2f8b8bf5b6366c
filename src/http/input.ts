import type { FastifyInstance } from 'fastify'
import { errorCodes } from 'fastify'
import sjson from 'secure-json-parse'
import { ApiError } from './errors.js'

/**
 * Request input rules that hold for every route, whatever its schema says: how deep a JSON body may nest, which
 * characters a string may hold, that unknown keys are dropped, and that ids in paths are digits.
 */

/** Deeper than any request schema (two levels: a body and its address) with room to spare, far from any stack limit. */
export const MAX_JSON_DEPTH = 10

/**
 * Whether the JSON text nests arrays and objects deeper than `max`, found by counting brackets outside strings, in
 * one pass and without recursion: a 5,000-level body is refused before anything recursive (parsing, validating,
 * encoding) touches it.
 */
export function nestsDeeperThan(text: string, max: number): boolean {
  let depth = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 0x5c) i++ // a backslash: the next character is escaped, whatever it is
      else if (c === 0x22) inString = false
    } else if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) {
      if (++depth > max) return true
    } else if (c === 0x7d || c === 0x5d) depth--
  }
  return false
}

/**
 * `application/json` bodies: the nesting bound first, then secure-json-parse with Fastify's own defaults
 * (`__proto__` refused, `constructor` allowed), so prototype poisoning stays refused as before.
 */
export function installJsonParser(app: FastifyInstance): void {
  app.removeContentTypeParser('application/json')
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = body as string
    if (text.length === 0) return done(new errorCodes.FST_ERR_CTP_EMPTY_JSON_BODY(), undefined)
    if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
      return done(new ApiError(400, { detail: `JSON parse error - nested deeper than ${MAX_JSON_DEPTH} levels.` }), undefined)
    }
    try {
      done(null, sjson.parse(text, { protoAction: 'error', constructorAction: 'ignore' }))
    } catch (err) {
      ;(err as { statusCode?: number }).statusCode = 400
      done(err as Error, undefined)
    }
  })
}

type JsonSchema = Record<string, unknown>

const isSchema = (value: unknown): value is JsonSchema => typeof value === 'object' && value !== null && !Array.isArray(value)

/**
 * A copy of a route schema in which every object schema that does not say otherwise states
 * `additionalProperties: false`: with ajv's `removeAdditional`, unknown keys are dropped at any depth instead of
 * reaching a handler (or a jsonb column), and the OpenAPI document says so. Maps (`patternProperties`) and
 * schemas that already choose are left alone.
 */
export function closeObjects<T>(schema: T): T {
  if (!isSchema(schema)) return schema
  const copy = JSON.parse(JSON.stringify(schema)) as JsonSchema
  const pending: JsonSchema[] = [copy]
  for (let node = pending.pop(); node; node = pending.pop()) {
    const isObject = node.type === 'object' || isSchema(node.properties)
    if (isObject && node.additionalProperties === undefined && node.patternProperties === undefined) {
      node.additionalProperties = false
    }
    for (const key of ['properties', 'patternProperties']) {
      if (isSchema(node[key])) pending.push(...Object.values(node[key]).filter(isSchema))
    }
    for (const key of ['items', 'additionalProperties', 'not', 'if', 'then', 'else']) {
      if (isSchema(node[key])) pending.push(node[key])
    }
    for (const key of ['anyOf', 'oneOf', 'allOf', 'items']) {
      if (Array.isArray(node[key])) pending.push(...(node[key] as unknown[]).filter(isSchema))
    }
  }
  return copy as T
}

/** The shape of one ajv error, which the error handler turns into DRF's field errors. */
export interface InputError {
  keyword: string
  instancePath: string
  params: Record<string, unknown>
  message: string
}

const SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/

/**
 * Every string anywhere in a body or query string that PostgreSQL cannot store as text: a NUL character (DRF's
 * ProhibitNullCharactersValidator) or a lone UTF-16 surrogate, which cannot be encoded in UTF-8 (Django's
 * ProhibitSurrogateCharactersValidator). Other control characters are allowed, as in DRF. Iterative, so no input
 * shape can exhaust the stack; keys are checked too where they survive validation (maps).
 */
export function textErrors(data: unknown): InputError[] {
  return hasBadText(data) ? locateBadText(data) : NO_ERRORS
}

const NO_ERRORS: InputError[] = []
const isBad = (text: string) => text.includes('\0') || SURROGATE.test(text)

/** The common case, on every request with a query string or body: one pass that builds no paths. */
function hasBadText(data: unknown): boolean {
  const pending: unknown[] = [data]
  while (pending.length) {
    const value = pending.pop()
    if (typeof value === 'string') {
      if (isBad(value)) return true
    } else if (Array.isArray(value)) {
      for (const item of value) pending.push(item)
    } else if (value !== null && typeof value === 'object') {
      for (const key in value) {
        if (isBad(key)) return true
        pending.push((value as Record<string, unknown>)[key])
      }
    }
  }
  return false
}

function locateBadText(data: unknown): InputError[] {
  const errors: InputError[] = []
  const pending: [unknown, string][] = [[data, '']]
  for (let item = pending.pop(); item; item = pending.pop()) {
    const [value, path] = item
    if (typeof value === 'string') {
      const problem = textProblem(value, path)
      if (problem) errors.push(problem)
    } else if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) pending.push([value[i], `${path}/${i}`])
    } else if (value !== null && typeof value === 'object') {
      for (const [key, inner] of Object.entries(value)) {
        const keyProblem = textProblem(key, `${path}/${key}`)
        if (keyProblem) errors.push(keyProblem)
        pending.push([inner, `${path}/${key}`])
      }
    }
  }
  return errors
}

function textProblem(text: string, instancePath: string): InputError | null {
  if (text.includes('\0')) return { keyword: 'nullCharacter', instancePath, params: {}, message: 'Null characters are not allowed.' }
  const lone = SURROGATE.exec(text)
  if (!lone) return null
  const unit = lone[0].charCodeAt(0)
  const codePoint = `U+${unit.toString(16).toUpperCase()}`
  return { keyword: 'surrogateCharacter', instancePath, params: { codePoint }, message: `Surrogate characters are not allowed: ${codePoint}.` }
}

const DIGITS = /^\d+$/

/**
 * Integer path parameters as written in the URL must be digits only: `/orders/%201`, `/orders/1.0` or `/orders/+1`
 * would otherwise be coerced to an id. Returns the parameters that are not.
 */
export function nonDigitParams(schema: unknown, params: unknown): InputError[] {
  if (!isSchema(schema) || !isSchema(schema.properties) || !isSchema(params)) return []
  const errors: InputError[] = []
  for (const [name, property] of Object.entries(schema.properties)) {
    const raw = params[name]
    if (isSchema(property) && property.type === 'integer' && typeof raw === 'string' && !DIGITS.test(raw)) {
      errors.push({ keyword: 'pattern', instancePath: `/${name}`, params: { pattern: DIGITS.source }, message: 'must be digits' })
    }
  }
  return errors
}
