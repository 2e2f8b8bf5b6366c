/** A cuttable TCP path to a real server, for fault tests that must cut REAL connections. */
import net from 'node:net'

/** A TCP pipe to a real server that a test can cut (connections dropped, port closed) and restore on the same port. */
export class TcpProxy {
  private server: net.Server | undefined
  private readonly sockets = new Set<net.Socket>()
  port = 0

  /** `latencyMs`: what the server sends reaches the client this much later (in order), as over a slow network. */
  constructor(
    private readonly target: { host: string; port: number },
    private readonly options: { latencyMs?: number } = {},
  ) {}

  async start(): Promise<this> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target.port, this.target.host)
      for (const socket of [client, upstream]) {
        this.sockets.add(socket)
        socket.on('close', () => this.sockets.delete(socket))
        socket.on('error', () => {
          client.destroy()
          upstream.destroy()
        })
      }
      client.pipe(upstream)
      const latency = this.options.latencyMs
      if (latency) upstream.on('data', (chunk: Buffer) => setTimeout(() => client.write(chunk), latency))
      else upstream.pipe(client)
    })
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(this.port, '127.0.0.1', () => resolve()))
    this.port = (server.address() as net.AddressInfo).port
    this.server = server
    return this
  }

  async cut(): Promise<void> {
    const server = this.server
    this.server = undefined
    for (const socket of this.sockets) socket.destroy()
    await new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()))
  }

  restore(): Promise<this> {
    return this.start()
  }

  url(original: string): string {
    const parsed = new URL(original)
    parsed.hostname = '127.0.0.1'
    parsed.port = String(this.port)
    return parsed.toString()
  }
}

export function targetOf(url: string, defaultPort: number) {
  const parsed = new URL(url)
  return { host: parsed.hostname || '127.0.0.1', port: Number(parsed.port || defaultPort) }
}
