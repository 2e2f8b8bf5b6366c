/**
 * Exact decimal handling for money: values travel as strings from the client to SQL numeric and back, never through
 * a JS float. The checks mirror Python's Decimal and DRF's DecimalField, so clients get DRF's messages.
 */

const DECIMAL = /^([+-]?)(\d*)(?:\.(\d*))?(?:[eE]([+-]?\d{1,4}))?$/

/** A decimal as Python's `Decimal.as_tuple()` sees it: significant digits (no leading zeros) and an exponent. */
export interface DecimalParts {
  negative: boolean
  digits: string
  exponent: number
}

export function parseDecimal(text: string): DecimalParts | null {
  const m = DECIMAL.exec(text.trim())
  if (!m) return null
  const [, sign = '', int = '', frac = '', exp = '0'] = m
  if (!int && !frac) return null
  return { negative: sign === '-', digits: (int + frac).replace(/^0+(?=.)/, ''), exponent: Number(exp) - frac.length }
}

function isZero(d: DecimalParts): boolean {
  return /^0+$/.test(d.digits)
}

/** Plain notation, without exponent or superfluous zeros ("010.50" → "10.5", "1e2" → "100"). */
export function plainDecimal(d: DecimalParts): string {
  let digits = d.digits
  let exponent = d.exponent
  if (isZero(d)) return '0'
  while (exponent < 0 && digits.endsWith('0')) {
    digits = digits.slice(0, -1)
    exponent++
  }
  let out: string
  if (exponent >= 0) out = digits + '0'.repeat(exponent)
  else {
    const padded = digits.padStart(-exponent + 1, '0')
    out = `${padded.slice(0, exponent)}.${padded.slice(exponent)}`
  }
  return (d.negative ? '-' : '') + out.replace(/^0+(?=\d)/, '')
}

export type MoneyResult = { ok: true; value: string } | { ok: false; error: string }

/**
 * DRF's DecimalField(max_digits=12, decimal_places=2, min_value=0) on a string or a JSON number: the value as a
 * numeric(12,2) literal, or DRF's message.
 */
export function parseMoney(input: unknown, maxDigits = 12, decimalPlaces = 2): MoneyResult {
  if (input === null) return { ok: false, error: 'This field may not be null.' }
  let text: string
  if (typeof input === 'number') {
    if (!Number.isFinite(input)) return { ok: false, error: 'A valid number is required.' }
    text = String(input)
  } else if (typeof input === 'string') {
    if (input.length > 1000) return { ok: false, error: 'String value too large.' }
    text = input
  } else {
    return { ok: false, error: 'A valid number is required.' }
  }
  const d = parseDecimal(text)
  if (!d) return { ok: false, error: 'A valid number is required.' }

  // DRF's validate_precision, on the digits as written (trailing zeros count, as in Python's Decimal).
  const n = d.digits.length
  const places = d.exponent >= 0 ? 0 : -d.exponent
  const total = d.exponent >= 0 ? n + d.exponent : Math.max(n, places)
  const whole = d.exponent >= 0 ? total : Math.max(0, n - places)
  if (total > maxDigits) return { ok: false, error: `Ensure that there are no more than ${maxDigits} digits in total.` }
  if (places > decimalPlaces) {
    return { ok: false, error: `Ensure that there are no more than ${decimalPlaces} decimal places.` }
  }
  if (whole > maxDigits - decimalPlaces) {
    return { ok: false, error: `Ensure that there are no more than ${maxDigits - decimalPlaces} digits before the decimal point.` }
  }
  if (d.negative && !isZero(d)) return { ok: false, error: 'Ensure this value is greater than or equal to 0.' }
  return { ok: true, value: plainDecimal({ ...d, negative: false }) }
}
