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
      const message = JSON.parse(String(data)) as { type: string; notification?: { order_id: number } }
      const orderId = message.notification?.order_id
      if (message.type !== 'order.status_changed' || orderId === undefined) return
      if (received.has(orderId)) duplicates++
      else received.set(orderId, at)
    })
    sockets.push(socket)
  })
}

process.once('message', async (start: Start) => {
  for (let i = 0; i < start.sockets.length; i += 250) {
    await Promise.all(start.sockets.slice(i, i + 250).map((s) => open(start.wsBase, s.token)))
  }
  process.send!({ ready: true })
  process.once('message', async ({ collect }: { collect: number }) => {
    const deadline = Date.now() + 5000
    while (received.size < collect && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50))
    for (const socket of sockets) socket.terminate()
    process.send!({ received: [...received], duplicates }, () => process.exit(0))
  })
})
