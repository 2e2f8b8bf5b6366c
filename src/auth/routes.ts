import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { AppContext } from '../context.js'
import { Detail } from '../http/pagination.js'
import { currentUser } from './guard.js'
import {
  PasswordChange,
  ProfilePatch,
  RefreshBody,
  RegisterBody,
  TokenBody,
  TokenPair,
  UserSchema,
  VerifyBody,
} from './schemas.js'
import * as auth from './service.js'

const tags = ['auth']
const bearer = [{ bearerAuth: [] }]
const unauthorized = { 401: Detail }

export const authRoutes: FastifyPluginAsyncTypebox<{ ctx: AppContext }> = async (app, { ctx }) => {
  app.post(
    '/auth/register',
    { schema: { tags, summary: 'Create an account', body: RegisterBody, response: { 201: UserSchema } } },
    async (request, reply) => reply.code(201).send(await auth.register(ctx, request.body)),
  )

  app.post(
    '/auth/token',
    {
      config: { rateLimitScope: 'credentials' },
      schema: { tags, summary: 'Obtain an access and refresh token pair', body: TokenBody, response: { 200: TokenPair, ...unauthorized } },
    },
    async (request) => auth.login(ctx, request.body.email, request.body.password),
  )

  app.post(
    '/auth/token/refresh',
    { schema: { tags, summary: 'Rotate a refresh token', body: RefreshBody, response: { 200: TokenPair, ...unauthorized } } },
    async (request) => auth.refresh(ctx, request.body.refresh),
  )

  app.post(
    '/auth/token/verify',
    { schema: { tags, summary: 'Check a token', body: VerifyBody, response: { 200: Type.Object({}), ...unauthorized } } },
    async (request) => {
      await auth.verify(ctx, request.body.token)
      return {}
    },
  )

  app.post(
    '/auth/logout',
    {
      preHandler: app.guards.user,
      schema: { tags, summary: 'Blacklist a refresh token', security: bearer, body: RefreshBody, response: { ...unauthorized } },
    },
    async (request, reply) => {
      await auth.logout(ctx, currentUser(request).id, request.body.refresh)
      return reply.code(205).send(undefined as never)
    },
  )

  app.get(
    '/me',
    { preHandler: app.guards.user, schema: { tags, summary: 'Your profile', security: bearer, response: { 200: UserSchema, ...unauthorized } } },
    async (request) => auth.serializeUser(await auth.getUser(ctx.db, currentUser(request).id)),
  )

  app.patch(
    '/me',
    {
      preHandler: app.guards.user,
      schema: { tags, summary: 'Update your profile', security: bearer, body: ProfilePatch, response: { 200: UserSchema, ...unauthorized } },
    },
    async (request) => auth.updateProfile(ctx, currentUser(request).id, request.body),
  )

  app.post(
    '/me/password',
    {
      preHandler: app.guards.user,
      schema: { tags, summary: 'Change your password (revokes every session)', security: bearer, body: PasswordChange, response: { ...unauthorized } },
    },
    async (request, reply) => {
      await auth.changePassword(ctx, currentUser(request).id, request.body.old_password, request.body.new_password)
      return reply.code(204).send(undefined as never)
    },
  )
}
