/**
 * Property-based fuzzing of every route in the OpenAPI document, whichever slice added it: random and malformed
 * bodies, ids, query strings and headers, as nobody, a user, staff and a forger. The server must never answer 5xx,
 * every error must be JSON in DRF shape, and a 4xx must leave the database exactly as it was.
 *
 * CI runs a fixed seed and a small number of runs per route; a long run is `FUZZ_RUNS=5000 npm run fuzz`
 * (`FUZZ_SEED=<n>` replays a failure printed by fast-check).
 */
import { afterAll, describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { eq, sql } from 'drizzle-orm'
import { users } from '../src/db/schema.js'
import { type TestApp, type TestUser, createTestApp } from './helpers.js'

const RUNS = Number(process.env.FUZZ_RUNS ?? 50)
const SEED = Number(process.env.FUZZ_SEED ?? 424242)
const BODY_LIMIT = 16 * 1024

// Every protection is on, so its hooks meet the junk too; the limits are high enough never to hide a route.
const HIGH = { perIp: 1_000_000, perAccount: 1_000_000 }
const t: TestApp = await createTestApp({
  config: {
    bodyLimit: BODY_LIMIT,
    accessTokenLifetime: 24 * 3600,
    corsOrigins: ['https://shop.example'],
    rateLimit: true,
    rateLimits: { register: HIGH, token: HIGH, refresh: HIGH, password: HIGH },
  },
})
let user: TestUser = await t.user()
let staff: TestUser = await t.user({ staff: true })

/**
 * Some routes legitimately end sessions (revoke, a staff deactivating or demoting an account whose id the fuzzer
 * guessed): every route starts from an active user and an active staff member with fresh tokens.
 */
async function restoreIdentities(): Promise<void> {
  for (const [who, isStaff] of [[user, false], [staff, true]] as const) {
    await t.ctx.db.update(users).set({ isActive: true, isStaff }).where(eq(users.id, who.id))
    await t.ctx.sessions.revoked(who.id)
  }
  const login = async (who: TestUser): Promise<TestUser> => {
    const res = await t.request('POST', '/api/v1/auth/token', { body: { email: who.email, password: who.password } })
    return { ...who, ...(res.json() as { access: string; refresh: string }) }
  }
  user = await login(user)
  staff = await login(staff)
  expect((await t.request('GET', '/api/v1/me', { token: staff.access })).json().is_staff).toBe(true)
}
afterAll(async () => {
  await t.close()
})

// ---------------------------------------------------------------------------------------------------------------
// The routes, from the app's own OpenAPI document

type Schema = {
  type?: string | string[]
  properties?: Record<string, Schema>
  items?: Schema
  required?: string[]
  format?: string
  enum?: unknown[]
  anyOf?: Schema[]
  oneOf?: Schema[]
  minimum?: number
  maximum?: number
  maxLength?: number
}
interface Parameter {
  name: string
  in: 'path' | 'query' | 'header'
  schema?: Schema
}
interface Operation {
  method: string
  path: string
  params: Parameter[]
  body: Schema | undefined
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const

function operationsOf(doc: { paths: Record<string, Record<string, { parameters?: Parameter[]; requestBody?: { content?: Record<string, { schema?: Schema }> } }>> }): Operation[] {
  const ops: Operation[] = []
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const method of METHODS) {
      const op = item[method]
      if (!op) continue
      ops.push({
        method: method.toUpperCase(),
        path,
        params: op.parameters ?? [],
        body: op.requestBody?.content?.['application/json']?.schema,
      })
    }
  }
  return ops
}

const doc = (await t.request('GET', '/openapi.json')).json()
const operations = operationsOf(doc)

// ---------------------------------------------------------------------------------------------------------------
// Arbitraries

/** NUL and the other C0 controls, DEL, and lone UTF-16 surrogates (which JSON.stringify writes as \udxxx escapes). */
const hostileChar = fc.oneof(
  fc.integer({ min: 0, max: 0x1f }).map((c) => String.fromCharCode(c)),
  fc.constantFrom('\u0000', '\u007f', '\ud800', '\udbff', '\udc00', '\udfff'),
)
const hostileString = fc
  .tuple(fc.string({ maxLength: 10 }), fc.array(hostileChar, { minLength: 1, maxLength: 3 }), fc.string({ maxLength: 10 }))
  .map(([a, chars, b]) => a + chars.join('') + b)

const junkString = fc.oneof(
  fc.string({ maxLength: 40 }),
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  hostileString,
  fc.constantFrom("' OR 1=1 --", '"; DROP TABLE users; --', '%00', '\u0000', '../../etc/passwd', '<script>alert(1)</script>', '${7*7}', '{{7*7}}', 'NaN', 'Infinity', '-0', '1e309', '   ', ''),
  fc.integer({ min: 1, max: 20_000 }).map((n) => 'x'.repeat(n)),
)

const junkValue: fc.Arbitrary<unknown> = fc.oneof(
  junkString,
  fc.integer(),
  fc.constantFrom(-1, 0, 2 ** 31, 2 ** 53, -(2 ** 63), 2 ** 64, 1e308, -1e308, 5e-324, Number.MAX_SAFE_INTEGER + 2),
  fc.double(),
  fc.boolean(),
  fc.constant(null),
  fc.jsonValue({ maxDepth: 3 }),
  fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 5 }),
  fc.constant(JSON.parse('{"__proto__": {"polluted": true}}') as unknown),
)

const decimalString = fc.oneof(
  fc.tuple(fc.integer({ min: -1000, max: 100_000 }), fc.integer({ min: 0, max: 99 })).map(([a, b]) => `${a}.${String(b).padStart(2, '0')}`),
  fc.constantFrom('0', '0.00', '1e5', '19.999', '-0.01', '99999999999999999999.99', '1,5'),
)

/** Values that often pass validation (so handlers run), mixed with values that should not. */
function valueFor(schema: Schema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 3) return junkValue
  const alternatives = schema.anyOf ?? schema.oneOf
  if (alternatives?.length) return fc.oneof(...alternatives.map((s) => valueFor(s, depth + 1)))
  if (schema.enum?.length) return fc.oneof(fc.constantFrom(...schema.enum), junkValue)
  const type = [schema.type ?? 'any'].flat()[0]
  let valid: fc.Arbitrary<unknown>
  switch (type) {
    case 'integer':
      valid = fc.oneof(
        fc.integer({ min: -3, max: 10 }),
        fc.integer({ min: schema.minimum ?? -1e6, max: schema.maximum ?? 1e6 }),
        // Past PostgreSQL's integer and bigint, and past what a double holds exactly.
        fc.constantFrom(2 ** 31, -(2 ** 31) - 1, 2 ** 40, 2 ** 63, 2 ** 64),
      )
      break
    case 'number':
      valid = fc.oneof(fc.integer({ min: -5, max: 1000 }), fc.double({ noNaN: true, noDefaultInfinity: true }))
      break
    case 'boolean':
      valid = fc.boolean()
      break
    case 'string':
      valid =
        schema.format === 'email'
          ? fc.emailAddress()
          : fc.oneof(
            fc.string({ maxLength: Math.min(schema.maxLength ?? 30, 30) }),
            decimalString,
            fc.constantFrom('pending', 'shipped', 'delivered', 'cancelled'),
            hostileString,
          )
      break
    case 'array':
      valid = fc.array(valueFor(schema.items, depth + 1), { maxLength: 4 })
      break
    case 'object':
      valid = objectFor(schema, depth + 1)
      break
    default:
      valid = junkValue
  }
  return fc.oneof({ arbitrary: valid, weight: 6 }, { arbitrary: junkValue, weight: 1 })
}

function objectFor(schema: Schema, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const props = Object.entries(schema.properties ?? {})
  const known = fc.record(Object.fromEntries(props.map(([name, s]) => [name, valueFor(s, depth)])), { requiredKeys: [] })
  const extra = fc.dictionary(fc.oneof(junkString, fc.constantFrom('__proto__', 'constructor', 'id', 'is_staff', 'user_id')), junkValue, { maxKeys: 3 })
  return fc.tuple(known, extra).map(([k, e]) => ({ ...e, ...k }))
}

interface RawBody {
  payload?: string
  contentType?: string
}

/** JSON text nested `depth` levels deep, wherever in a body it sits (arrays, objects, or both). */
const deepJson = fc
  .tuple(fc.integer({ min: 8, max: 6_000 }), fc.constantFrom('[', '{"a":', '{"address":'), fc.constantFrom('1', '"x"', 'null', '{}'))
  .map(([depth, open, leaf]) => open.repeat(depth) + leaf + (open === '[' ? ']' : '}').repeat(depth))

/** Numbers no JavaScript number holds exactly, written as JSON text. */
const hugeNumberJson = (body: Schema | undefined) =>
  fc
    .tuple(fc.constantFrom(...Object.keys(body?.properties ?? { x: {} })), fc.constantFrom('123456789012345678901234567890', '-9223372036854775809', '1e400', '-1e400', '1e-400', '0.000000000000000000000000001'))
    .map(([key, number]) => `{${JSON.stringify(key)}: ${number}}`)

function bodyFor(op: Operation): fc.Arbitrary<RawBody> {
  const json = (value: fc.Arbitrary<unknown>) => value.map((v) => ({ payload: JSON.stringify(v), contentType: 'application/json' }))
  const text = (value: fc.Arbitrary<string>) => value.map((payload) => ({ payload, contentType: 'application/json' }))
  return fc.oneof(
    { arbitrary: text(deepJson), weight: 1 },
    { arbitrary: text(hugeNumberJson(op.body)), weight: 1 },
    { arbitrary: fc.constant<RawBody>({}), weight: 1 },
    { arbitrary: json(op.body ? objectFor(op.body) : fc.object()), weight: 5 },
    { arbitrary: json(junkValue), weight: 2 },
    {
      arbitrary: fc
        .oneof(
          fc.constantFrom('{', '[1,', '{"a":}', '{"email": "a@b.c",}', 'nul', '""', "{'a': 1}", '\u0000', '{"__proto__": {"polluted": 1}}', '{"constructor": {"prototype": {"polluted": 1}}}', ''),
          fc.string({ maxLength: 100 }),
        )
        .map((payload) => ({ payload, contentType: 'application/json' })),
      weight: 2,
    },
    {
      arbitrary: fc
        .tuple(fc.constantFrom('text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/json; charset=latin1', 'application/jsonx', ''), fc.string({ maxLength: 60 }))
        .map(([contentType, payload]) => ({ payload, contentType })),
      weight: 1,
    },
    { arbitrary: fc.constant<RawBody>({ payload: JSON.stringify({ a: 'x'.repeat(BODY_LIMIT) }), contentType: 'application/json' }), weight: 1 },
  )
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g

/** encodeURIComponent, except that a lone surrogate (which it refuses) is sent as its WTF-8 bytes, as some clients do. */
function encodeQuery(text: string): string {
  let out = ''
  let last = 0
  for (const match of text.matchAll(LONE_SURROGATE)) {
    const unit = match[0].charCodeAt(0)
    const bytes = [0xed, 0x80 | ((unit >> 6) & 0x3f), 0x80 | (unit & 0x3f)]
    out += encodeURIComponent(text.slice(last, match.index)) + bytes.map((b) => `%${b.toString(16).toUpperCase()}`).join('')
    last = match.index + 1
  }
  return out + encodeURIComponent(text.slice(last))
}

const idSegment = fc
  .oneof(
    hostileString,
    fc.integer({ min: 1, max: 6 }).map(String),
    fc.integer({ min: -1_000_000, max: 0 }).map(String),
    fc.constantFrom('2147483648', '9223372036854775808', '99999999999999999999999', '1e3', '0x10', '1.5', '01', '+1', ' 1', 'null', 'undefined', 'NaN', '-0', '%', '..', "1'", '1;DROP'),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }),
    fc.string({ minLength: 1, maxLength: 250 }),
  )
  .map(encodeQuery)

function queryFor(op: Operation): fc.Arbitrary<string> {
  const names = [...op.params.filter((p) => p.in === 'query').map((p) => p.name), 'page', 'page_size', 'ordering', 'search', 'cursor']
  const value = fc.oneof(junkString, fc.integer().map(String), decimalString, fc.constantFrom('true', 'false', '-1', '0', '1', '100000', 'last', '-price', 'name'))
  const pair = fc.tuple(fc.oneof({ arbitrary: fc.constantFrom(...names), weight: 4 }, { arbitrary: junkString, weight: 1 }), value)
  return fc.oneof(
    fc.array(pair, { maxLength: 5 }).map((pairs) => pairs.map(([k, v]) => `${encodeQuery(k)}=${encodeQuery(v)}`).join('&')),
    fc.constantFrom('a=%zz', '%%%', 'page[]=1&page[]=2', '&&&=', '=x', 'category=1,2,x&category=3', `q=${'a'.repeat(2100)}`),
  )
}

type Identity = 'anonymous' | 'user' | 'staff' | 'forged'
const identity = fc.constantFrom<Identity>('anonymous', 'user', 'staff', 'forged')
const forgedAuth = fc.constantFrom('Bearer', 'Bearer ', 'Bearer abc.def.ghi', 'Basic dXNlcjpwYXNz', 'bearer  x', `Bearer ${'a'.repeat(5000)}`, 'Token x')

const extraHeaders = fc.record(
  {
    accept: fc.constantFrom('*/*', 'text/html', 'application/xml', '', 'application/json;q=0'),
    'x-request-id': fc.string({ maxLength: 300 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
    'idempotency-key': fc.string({ maxLength: 300 }).filter((s) => /^[\x20-\x7e]*$/.test(s)),
    'accept-encoding': fc.constantFrom('gzip', 'br', 'identity', 'junk'),
    origin: fc.constantFrom('https://shop.example', 'https://evil.example', 'null', 'not a url'),
    'x-forwarded-for': fc.constantFrom('1.2.3.4', 'junk', '::1, 10.0.0.1', ''),
  },
  { requiredKeys: [] },
)

// ---------------------------------------------------------------------------------------------------------------
// Invariants

/** DRF error shapes: {"detail": "...", ...} or a field dict whose leaves are lists of strings. */
function drfShapeProblem(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return 'not an object'
  const record = body as Record<string, unknown>
  if ('detail' in record) return typeof record.detail === 'string' ? null : '"detail" is not a string'
  const field = (value: unknown): boolean =>
    Array.isArray(value)
      ? value.length > 0 && value.every((v) => typeof v === 'string' || (typeof v === 'object' && v !== null && !Array.isArray(v) && Object.values(v).every(field)))
      : typeof value === 'object' && value !== null && Object.values(value).every(field)
  const keys = Object.keys(record)
  if (!keys.length) return 'empty error body'
  return keys.every((k) => field(record[k])) ? null : 'not a DRF field dict'
}

const tables: string[] = (
  (await t.ctx.db.execute(
    sql`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY table_name`,
  )) as unknown as { rows: { table_name: string }[] }
).rows.map((r) => r.table_name)

/** Rows whose stored address (a jsonb copied from request bodies) holds a key that is not an address field. */
async function addressesWithUnknownKeys(): Promise<number> {
  const fields = sql.raw(`('line1', 'line2', 'city', 'state', 'postal_code', 'country')`)
  const result = (await t.ctx.db.execute(sql`
    SELECT (SELECT count(*) FROM users WHERE EXISTS (SELECT 1 FROM jsonb_object_keys(address) k WHERE k NOT IN ${fields}))
         + (SELECT count(*) FROM orders WHERE EXISTS (SELECT 1 FROM jsonb_object_keys(shipping_address) k WHERE k NOT IN ${fields})) AS n
  `)) as unknown as { rows: { n: number | string }[] }
  return Number(result.rows[0]!.n)
}

/** Row count and a checksum of every table's contents. */
async function snapshot(): Promise<Record<string, string>> {
  const columns = tables.map(
    (name) => `(SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, '|' ORDER BY x::text)), '') FROM "${name}" x) AS "${name}"`,
  )
  const result = (await t.ctx.db.execute(sql.raw(`SELECT ${columns.join(', ')}`))) as unknown as { rows: Record<string, string>[] }
  return result.rows[0]!
}

// ---------------------------------------------------------------------------------------------------------------

describe('fuzzing every route of the OpenAPI document', () => {
  it('finds the routes', () => {
    expect(operations.length).toBeGreaterThan(8)
    expect(tables).toEqual(expect.arrayContaining(['users', 'refresh_tokens']))
  })

  it('notices any change to any table (the invariant is not vacuous)', async () => {
    const before = await snapshot()
    await t.ctx.db.execute(sql`UPDATE users SET first_name = first_name || '!' WHERE id = ${user.id}`)
    const after = await snapshot()
    expect(after.users).not.toBe(before.users)
    await t.ctx.db.execute(sql`UPDATE users SET first_name = left(first_name, length(first_name) - 1) WHERE id = ${user.id}`)
    expect(await snapshot()).toEqual(before)
  })

  let baseline: Record<string, string> | undefined

  for (const op of operations) {
    it(`${op.method} ${op.path}`, async () => {
      await restoreIdentities()
      baseline = await snapshot()
      const stats: Record<number, number> = {}
      const request = fc.record({
        ids: fc.array(idSegment, { minLength: 4, maxLength: 4 }),
        query: fc.option(queryFor(op), { nil: undefined, freq: 2 }),
        body: bodyFor(op),
        who: identity,
        forged: forgedAuth,
        headers: extraHeaders,
        slash: fc.boolean(),
      })
      await fc.assert(
        fc.asyncProperty(request, async (r) => {
          let n = 0
          const path = op.path.replace(/\{[^}]+\}/g, () => r.ids[n++ % r.ids.length]!) + (r.slash ? '/' : '')
          const url = r.query === undefined ? path : `${path}?${r.query}`
          const auth =
            r.who === 'user' ? `Bearer ${user.access}` : r.who === 'staff' ? `Bearer ${staff.access}` : r.who === 'forged' ? r.forged : undefined
          const headers: Record<string, string> = { ...r.headers }
          if (auth !== undefined) headers.authorization = auth
          if (r.body.contentType) headers['content-type'] = r.body.contentType
          const res = await t.app.inject({
            method: op.method as 'GET',
            url,
            headers,
            ...(r.body.payload !== undefined ? { payload: r.body.payload } : {}),
          })
          const where = `${op.method} ${url.slice(0, 300)} as ${r.who} → ${res.statusCode} ${res.body.slice(0, 300)}`
          expect(res.statusCode, where).toBeLessThan(500)
          expect(({} as Record<string, unknown>).polluted, `prototype polluted by ${where}`).toBeUndefined()
          const after = await snapshot()
          expect(await addressesWithUnknownKeys(), `unknown keys stored by ${where}`).toBe(0)
          if (res.statusCode >= 400) {
            expect(String(res.headers['content-type']), where).toMatch(/^application\/json/)
            let body: unknown
            expect(() => (body = res.json()), where).not.toThrow()
            expect(drfShapeProblem(body), where).toBeNull()
            for (const table of tables) expect(after[table], `${table} changed by ${where}`).toBe(baseline![table])
          }
          baseline = after
          stats[res.statusCode] = (stats[res.statusCode] ?? 0) + 1
        }),
        { numRuns: RUNS, seed: SEED, endOnFailure: true },
      )
      if (process.env.FUZZ_STATS) console.info(`${op.method} ${op.path}`, stats)
    })
  }
})
