// autocannon ships no types; this covers the part of its programmatic API the bench uses.
declare module 'autocannon' {
  export interface Request {
    method?: string
    path?: string
    body?: string
    headers?: Record<string, string>
    setupRequest?: (request: Request, context: Record<string, unknown>) => Request
    onResponse?: (status: number, body: string, context: Record<string, unknown>, headers: Record<string, string>) => void
  }
  export interface Client {
    setHeaders(headers: Record<string, string>): void
  }
  export interface Options {
    url: string
    connections?: number
    duration?: number
    amount?: number
    method?: string
    body?: string
    headers?: Record<string, string>
    requests?: Request[]
    setupClient?: (client: Client) => void
    timeout?: number
  }
  export interface Histogram {
    average: number
    p50: number
    p99: number
    total: number
  }
  export interface Result {
    requests: Histogram
    latency: Histogram
    errors: number
    timeouts: number
    non2xx: number
    duration: number
    statusCodeStats?: Record<string, { count: number }>
  }
  function autocannon(options: Options): Promise<Result>
  export default autocannon
}
