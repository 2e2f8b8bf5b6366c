import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'

export const notificationsRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async () => {}
