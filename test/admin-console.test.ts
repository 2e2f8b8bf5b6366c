/**
 * The staff console in a real browser (Debian's Chromium through playwright-core) against a real listening server:
 * every step goes through the page as a person would, and the run fails on any console error, uncaught exception,
 * failed request or error answer the step did not expect. With SCREENSHOTS=1 it writes the main screens to
 * docs/screenshots/.
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type BrowserContext, type Page, chromium } from 'playwright-core'
import { PASSWORD, type TestApp, type TestUser, createTestApp } from './helpers.js'
import { Client, connected } from './notifications-helpers.js'
import { addToCart } from './orders-fixtures.js'

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const SCREENSHOTS = join(import.meta.dirname, '../docs/screenshots')
const address = { line1: '1 Pudding Lane', city: 'London', postal_code: 'EC3R 8AB', country: 'United Kingdom' }

let t: TestApp
let browser: BrowserContext
let profile: string
let page: Page
let staff: TestUser
let customer: TestUser
let outsider: TestUser
/** Every problem the page reported; each test ends by asserting there was none. */
const problems: string[] = []
/** Error answers the current step provokes on purpose ("METHOD path status"), each allowed once. */
const expected: string[] = []

beforeAll(async () => {
  t = await createTestApp({ listen: true })
  // The file's database is its own: plain addresses read better in the screenshots.
  staff = await t.user({ email: 'staff@example.com', staff: true })
  customer = await t.user({ email: 'ada@example.com' })
  outsider = await t.user({ email: 'bob@example.com' })
  profile = mkdtempSync(join(tmpdir(), 'storefront-chromium-'))
  browser = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    viewport: { width: 1280, height: 860 },
  })
  page = browser.pages()[0] ?? (await browser.newPage())
  page.setDefaultTimeout(10_000)
  // Accepts the console's confirmations (retire, deactivate...), as the person clicking would.
  page.on('dialog', (dialog) => void dialog.accept())
  page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`))
  page.on('requestfailed', (request) => {
    // A navigation away cancels the socket of the page left behind: that is no failure.
    if (request.failure()?.errorText !== 'net::ERR_ABORTED') problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`)
  })
  page.on('response', (response) => {
    if (response.status() < 400) return
    const seen = `${response.request().method()} ${new URL(response.url()).pathname} ${response.status()}`
    const at = expected.indexOf(seen)
    if (at >= 0) expected.splice(at, 1)
    else problems.push(`unexpected answer: ${seen}`)
  })
  page.on('console', (message) => {
    // Chromium reports every error answer as a console error too; the response handler above judges those.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(`console: ${message.text()}`)
  })
})

afterAll(async () => {
  await browser?.close()
  if (profile) rmSync(profile, { recursive: true, force: true })
  await t?.close()
})

function clean() {
  expect(problems).toEqual([])
  expect(expected).toEqual([])
}

/** `SCREENSHOTS=1` refreshes docs/screenshots; other runs leave the committed pictures alone. */
async function shoot(name: string) {
  if (!process.env.SCREENSHOTS) return
  mkdirSync(SCREENSHOTS, { recursive: true })
  await page.screenshot({ path: join(SCREENSHOTS, `${name}.png`) })
}

async function signIn(email: string, password: string) {
  await page.goto(`${t.url}/admin`)
  await page.getByLabel('Email').fill(email)
  await page.getByLabel('Password').fill(password)
  // By keyboard: Enter submits.
  await page.getByLabel('Password').press('Enter')
}

const nav = () => page.getByRole('navigation', { name: 'Sections' })

describe('the staff console', () => {
  it('serves a page with its own strict policy and cacheable assets', async () => {
    const index = await fetch(`${t.url}/admin/orders/1`)
    expect(index.status).toBe(200)
    expect(index.headers.get('cache-control')).toBe('no-cache')
    const csp = index.headers.get('content-security-policy')!
    expect(csp).toContain("script-src 'self'")
    expect(csp).toContain("style-src 'self'")
    expect(csp).not.toContain('unsafe-inline')
    const html = await index.text()
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/)
    const asset = /src="(\/admin\/assets\/[^"]+\.js)"/.exec(html)![1]!
    const js = await fetch(`${t.url}${asset}`)
    expect(js.status).toBe(200)
    expect(js.headers.get('cache-control')).toBe('public, max-age=31536000, immutable')
    expect((await fetch(`${t.url}/admin/assets/nope.js`)).status).toBe(404)
    // The API keeps its own policy.
    expect((await fetch(`${t.url}/health/live`)).headers.get('content-security-policy')).toBe("default-src 'none';frame-ancestors 'none'")
  })

  it('tells a customer they have no access, and shows nothing staff-only', async () => {
    await signIn(outsider.email, PASSWORD)
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('no access to the staff console')
    expect(await nav().count()).toBe(0)
    // The console signed them straight out again: the tokens it was given are revoked (logout ends every access token).
    expect((await t.request('GET', '/api/v1/me', { token: outsider.access })).statusCode).toBe(401)
    await shoot('sign-in-refused')
    clean()
  })

  it('signs staff in and shows the overview', async () => {
    await signIn(staff.email, PASSWORD)
    await nav().waitFor()
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor()
    await page.getByText('Live', { exact: true }).waitFor()
    clean()
  })

  it('creates a category and a product, shows a field error next to its field, adjusts stock', async () => {
    await nav().getByRole('link', { name: 'Categories' }).click()
    const form = page.getByRole('form', { name: 'New category' })
    await form.getByLabel('Name').fill('Teas')
    await form.getByLabel('Description').fill('Leaves, loose and bagged')
    await form.getByRole('button', { name: 'Create category' }).click()
    await page.getByRole('status').getByText('Created “Teas”.').waitFor()
    // The same name again: the API's message, under the field.
    expected.push('POST /api/v1/categories 400')
    await form.getByLabel('Name').fill('teas')
    await form.getByRole('button', { name: 'Create category' }).click()
    await expect.poll(() => form.locator('.field.invalid .error').textContent()).toBe('category with this name already exists.')

    await nav().getByRole('link', { name: 'Products' }).click()
    await page.getByRole('link', { name: 'New product' }).click()
    const product = page.getByRole('form', { name: 'New product' })
    await product.getByLabel('Name').fill('Assam, 250 g')
    await product.getByLabel('Price').fill('twelve')
    await product.getByLabel('Category').selectOption({ label: 'Teas' })
    await product.getByLabel('Initial stock').fill('3')
    expected.push('POST /api/v1/products 400')
    await product.getByRole('button', { name: 'Create product' }).click()
    const price = product.getByLabel('Price')
    await expect.poll(() => price.getAttribute('aria-invalid')).toBe('true')
    const describedBy = (await price.getAttribute('aria-describedby'))!.split(' ')
    const message = await page.locator(`[id="${describedBy.at(-1)}"]`).textContent()
    expect(message).toBe('A valid number is required.')
    await shoot('product-field-error')

    await price.fill('12.50')
    await product.getByRole('button', { name: 'Create product' }).click()
    await page.getByRole('heading', { name: 'Assam, 250 g', level: 1 }).waitFor()
    const stock = page.getByTestId('stock')
    expect(await stock.textContent()).toBe('3')
    await page.getByLabel('Adjust by').fill('7')
    await page.getByRole('button', { name: 'Apply' }).click()
    await page.getByRole('status').getByText('Stock is now 10.').waitFor()
    expect(await stock.textContent()).toBe('10')
    expected.push(`POST ${new URL(page.url()).pathname.replace('/admin', '/api/v1')}/stock 409`)
    await page.getByLabel('Adjust by').fill('-11')
    await page.getByRole('button', { name: 'Apply' }).click()
    await expect.poll(() => page.getByRole('alert').textContent()).toMatch(/./)
    expect(await stock.textContent()).toBe('10')
    await shoot('product')

    // The category now has a product: deleting it shows the API's reason.
    await nav().getByRole('link', { name: 'Categories' }).click()
    expected.push(`DELETE /api/v1/categories/${await categoryId('Teas')} 409`)
    await page.getByRole('button', { name: 'Delete Teas' }).click()
    await expect.poll(() => page.getByRole('alert').textContent()).toBe(
      '“Teas” was not deleted: Cannot delete a category that still has products.',
    )
    await shoot('categories')
    clean()
  })

  it('filters products and pages through them by cursor', async () => {
    const teas = await categoryId('Teas')
    for (let i = 0; i < 25; i++) {
      const body = { name: `Blend ${String(i + 1).padStart(2, '0')}`, price: `${i + 1}.00`, stock: i, category_id: teas }
      expect((await t.request('POST', '/api/v1/products', { token: staff.access, body })).statusCode).toBe(201)
    }
    await nav().getByRole('link', { name: 'Products' }).click()
    const names = () => page.getByRole('table', { name: 'Products' }).locator('tbody tr td:first-child').allTextContents()
    const filters = page.getByRole('form', { name: 'Filter products' })
    await filters.getByLabel('Order by').selectOption({ label: 'Name A–Z' })
    await expect.poll(names).toEqual(['Assam, 250 g', ...Array.from({ length: 19 }, (_, i) => `Blend ${String(i + 1).padStart(2, '0')}`)])
    const pages = page.getByRole('navigation', { name: 'Product pages' })
    await pages.getByRole('button', { name: 'Next →' }).click()
    await expect.poll(names).toEqual(['Blend 20', 'Blend 21', 'Blend 22', 'Blend 23', 'Blend 24', 'Blend 25'])
    expect(await pages.getByRole('button', { name: 'Next →' }).isDisabled()).toBe(true)
    await pages.getByRole('button', { name: '← Previous' }).click()
    await expect.poll(async () => (await names()).length).toBe(20)
    // Typed filters apply on submit (Enter); sold-out and price filters combine with the search.
    await filters.getByLabel('Search').fill('blend')
    await filters.getByLabel('Max price').fill('3')
    await filters.getByLabel('Max price').press('Enter')
    await expect.poll(names).toEqual(['Blend 01', 'Blend 02', 'Blend 03'])
    await filters.getByLabel('Stock').selectOption({ label: 'Sold out' })
    await expect.poll(names).toEqual(['Blend 01'])
    // A bad bound: the API's message under that field.
    expected.push('GET /api/v1/products 400')
    await filters.getByLabel('Max price').fill('cheap')
    await filters.getByLabel('Max price').press('Enter')
    await expect.poll(() => filters.getByLabel('Max price').getAttribute('aria-invalid')).toBe('true')
    await filters.getByRole('button', { name: 'Clear' }).click()
    await expect.poll(async () => (await names()).length).toBe(20)
    await shoot('products')
    clean()
  })

  let orderId: number
  let socket: Client

  it('shows an order in the live feed within a second of its placement, without a reload', async () => {
    await nav().getByRole('link', { name: 'Overview' }).click()
    await page.getByText('Live', { exact: true }).waitFor()
    const before = page.url()
    socket = await connected(t, { token: customer.access })
    const productId = (await t.request('GET', '/api/v1/products?search=Assam')).json().results[0].id as number
    await addToCart(t, customer, productId, 2)
    const placed = await t.request('POST', '/api/v1/orders', { token: customer.access, body: { shipping_address: address } })
    expect(placed.statusCode).toBe(201)
    orderId = placed.json().id
    const started = Date.now()
    await page.getByRole('list', { name: 'Live orders, newest first' }).getByRole('link', { name: `Order #${orderId}` }).waitFor({ timeout: 1_000 })
    expect(Date.now() - started).toBeLessThan(1_000)
    expect(page.url()).toBe(before)
    await expect.poll(() => page.getByTestId('placed-today').textContent()).toBe('1')
    await shoot('overview')
    clean()
  })

  it('ships the order from the console, and the customer’s socket hears it', async () => {
    await page.getByRole('list', { name: 'Live orders, newest first' }).getByRole('link', { name: `Order #${orderId}` }).click()
    await page.getByRole('heading', { name: `Order #${orderId}`, level: 1 }).waitFor()
    const actions = async () => (await page.locator('.title .actions button').allTextContents()).sort()
    expect(await actions()).toEqual(['Cancel order', 'Mark shipped'])
    await shoot('order')
    await page.getByRole('button', { name: 'Mark shipped' }).click()
    await page.getByRole('status').getByText(`Order #${orderId} is now shipped`).waitFor()
    expect(await actions()).toEqual(['Mark delivered'])
    await socket.until(() => socket.notifications.some((n) => n.order_id === orderId && n.status === 'shipped'), 2_000, 'shipped')
    await socket.close()

    await nav().getByRole('link', { name: 'Orders' }).click()
    const row = page.getByRole('row').filter({ has: page.getByRole('link', { name: `#${orderId}`, exact: true }) })
    await expect.poll(() => row.locator('.badge').textContent()).toBe('shipped')
    await shoot('orders')
    clean()
  })

  it('finds the customer, shows their orders and ends their sessions', async () => {
    await nav().getByRole('link', { name: 'Customers' }).click()
    await page.getByLabel('Email contains').fill('ada')
    await page.getByRole('button', { name: 'Search' }).click()
    await page.getByRole('link', { name: customer.email }).click()
    await page.getByRole('heading', { name: customer.email, level: 1 }).waitFor()
    await page.getByRole('link', { name: `#${orderId}`, exact: true }).waitFor()
    await page.getByRole('button', { name: 'Revoke sessions' }).click()
    await page.getByRole('status').getByText('Every session of this account has ended.').waitFor()
    expect((await t.request('GET', '/api/v1/me', { token: customer.access })).statusCode).toBe(401)
    await shoot('customer')
    clean()
  })

  it('reads at phone width', async () => {
    await page.setViewportSize({ width: 390, height: 844 })
    await nav().getByRole('link', { name: 'Overview' }).click()
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor()
    // Nothing wider than the screen but the tables' own scrolling boxes.
    expect(await page.evaluate(() => document.documentElement.scrollWidth)).toBeLessThanOrEqual(390)
    await shoot('overview-phone')
    await page.setViewportSize({ width: 1280, height: 860 })
    clean()
  })

  it('signs out: the session is revoked and the sign-in page is back', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click()
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    await page.reload()
    await page.getByRole('button', { name: 'Sign in' }).waitFor()
    clean()
  })
})

async function categoryId(name: string): Promise<number> {
  const all = (await t.request('GET', '/api/v1/categories?page_size=100')).json().results as Array<{ id: number; name: string }>
  return all.find((c) => c.name === name)!.id
}
