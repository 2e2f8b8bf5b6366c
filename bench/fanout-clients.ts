/**
 * The ws-fanout scenario's listeners, in a process of their own (forked by bench/scenarios.ts), so that neither the
 * process sending the status changes nor its event loop is in the latency measured. Times are wall-clock
 * milliseconds with sub-millisecond precision (timeOrigin + now), comparable between the two processes.
 *
 * Parent → child: {sockets: [{token, orderId}], wsBase}, then {collect: n} once n changes were sent and answered.
 * Child → parent: {ready: true} once every socket is open, then {received: [[orderId, at]], duplicates}.
 */
import { performance } from 'node:perf_hooks'
import WebSocket from 'ws'
import { frameText } from '../src/notifications/protocol.js'

interface Start {
  wsBase: string
  sockets: { token: string; orderId: number }[]
}

const wallNow = () => performance.timeOrigin + performance.now()
const received = new Map<number, number>()
let duplicates = 0
const sockets: WebSocket[] = []

function open(wsBase: string, token: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(`${wsBase}/ws/notifications?token=${token}`)
    socket.on('open', () => resolve())
    socket.on('error', reject)
    socket.on('message', (data) => {
      const at = wallNow()
      const message = JSON.parse(frameText(data)) as { type: string; notification?: { order_id: number } }
      const orderId = message.notification?.order_id
      if (message.type !== 'order.status_changed' || orderId === undefined) return
      if (received.has(orderId)) duplicates++
      else received.set(orderId, at)
    })
    sockets.push(socket)
  })
}

async function collect(count: number): Promise<void> {
  const deadline = Date.now() + 5000
  while (received.size < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  for (const socket of sockets) socket.terminate()
  process.send!({ received: [...received], duplicates }, () => process.exit(0))
}

async function start({ wsBase, sockets: wanted }: Start): Promise<void> {
  for (let i = 0; i < wanted.length; i += 250) {
    await Promise.all(wanted.slice(i, i + 250).map((s) => open(wsBase, s.token)))
  }
  process.send!({ ready: true })
  process.once('message', ({ collect: count }: { collect: number }) => void collect(count))
}

process.once('message', (message: Start) => void start(message))
