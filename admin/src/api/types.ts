/** Names for the API's shapes, all taken from the generated document types: nothing here is declared by hand. */
import type { paths } from './schema'

type Json<R> = R extends { content: { 'application/json': infer T } } ? T : never
type Ok<P extends keyof paths, M extends keyof paths[P]> = paths[P][M] extends { responses: { 200: infer R } } ? Json<R> : never

export type Me = Ok<'/api/v1/me', 'get'>
export type Account = Ok<'/api/v1/users/{id}', 'get'>
export type Category = Ok<'/api/v1/categories/{id}', 'get'>
export type Product = Ok<'/api/v1/products/{id}', 'get'>
export type Order = Ok<'/api/v1/orders/{id}', 'get'>
export type OrderStatus = Order['status']
export type TokenPair = Ok<'/api/v1/auth/token', 'post'>
/** A frame of the staff stream, documented as /ws/staff's 101 answer. */
export type StaffFrame = paths['/ws/staff']['get']['responses'][101]['content']['application/json']
