/** The WebSocket wire protocol of /ws/notifications, shared by the server and the watch-notifications CLI. */
import type { NotificationOut } from './service.js'

export const NOTIFICATIONS_PATH = '/ws/notifications'

/** Close codes. 4401 mirrors HTTP 401: the client should get a fresh access token and reconnect. */
export const CloseCode = {
  normal: 1000,
  /** The server is shutting down: reconnect (to another instance) at once. */
  goingAway: 1001,
  /** The client does not keep up with its notifications: reconnect with `since`. */
  tryAgainLater: 1013,
  internalError: 1011,
  badRequest: 4400,
  unauthorized: 4401,
  /** Mirrors HTTP 403: signed in, but not allowed on this stream (a customer on /ws/staff). */
  forbidden: 4403,
  /** The user opened more sockets on this instance than WS_MAX_SOCKETS_PER_USER; this, their oldest, gave way. */
  tooManySockets: 4429,
} as const

export type ServerMessage =
  | { type: 'order.status_changed'; notification: NotificationOut }
  | { type: 'pong' }
  | { type: 'error'; detail: string }

export type ClientMessage = { type: 'ping' }

/** A frame's text: ws hands over a Buffer, or its fragments as an array, depending on how the frame arrived. */
export function frameText(data: Buffer | ArrayBuffer | Buffer[]): string {
  if (Array.isArray(data)) return Buffer.concat(data).toString()
  return Buffer.isBuffer(data) ? data.toString() : Buffer.from(data).toString()
}
