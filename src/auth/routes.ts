import { Type, type FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox'
import type { Db } from '../db/index.js'
import type { Auth } from './index.js'
import { accountGone, currentUser } from './guard.js'
import { buildPage, pageRequest } from '../http/pagination.js'
import { Detail, IdParams, PageQuery, Paginated, bearer } from '../http/schemas.js'
import { forbidden } from '../http/errors.js'
import {
  AccountPatch,
  AccountSchema,
  PasswordChange,
  RevokeBody,
  ProfilePatch,
  RefreshBody,
  RegisterBody,
  TokenBody,
  TokenPair,
  UserSchema,
  VerifyBody,
} from './schemas.js'
import { getAccount, listAccounts, register, serializeAccount, serializeUser, updateAccount, updateProfile } from './accounts.js'
import { changePassword, login, logout, refresh, revokeSessions, verify } from './credentials.js'

const tags = ['auth']
const unauthorized = { 401: Detail }

export const authRoutes: FastifyPluginAsyncTypebox<{ ctx: Pick<Auth, 'tokens' | 'hasher' | 'sessions'> & { db: Db } }> = async (app, { ctx }) => {
  app.post(
    '/auth/register',
    { config: { rateLimitScope: 'register' }, schema: { tags, operationId: 'register', summary: 'Create an account', body: RegisterBody, response: { 201: UserSchema } } },
    async (request, reply) => reply.code(201).send(await register(ctx, request.body)),
  )

  app.post(
    '/auth/token',
    {
      config: { rateLimitScope: 'token' },
      schema: { tags, operationId: 'obtainToken', summary: 'Obtain an access and refresh token pair', body: TokenBody, response: { 200: TokenPair, ...unauthorized } },
    },
    async (request) => login(ctx, request.body.email, request.body.password),
  )

  app.post(
    '/auth/token/refresh',
    {
      config: { rateLimitScope: 'refresh' },
      schema: { tags, operationId: 'refreshToken', summary: 'Rotate a refresh token', body: RefreshBody, response: { 200: TokenPair, ...unauthorized } },
    },
    async (request) => refresh(ctx, request.body.refresh),
  )

  app.post(
    '/auth/token/verify',
    { schema: { tags, operationId: 'verifyToken', summary: 'Check a token', body: VerifyBody, response: { 200: Type.Object({}), ...unauthorized } } },
    async (request) => {
      await verify(ctx, request.body.token)
      return {}
    },
  )

  app.post(
    '/auth/logout',
    {
      onRequest: app.guards.user,
      schema: { tags, operationId: 'logout', summary: 'Blacklist a refresh token', security: bearer, body: RefreshBody, response: { ...unauthorized } },
    },
    async (request, reply) => {
      await logout(ctx, currentUser(request).id, request.body.refresh)
      return reply.code(205).send(undefined as never)
    },
  )

  app.get(
    '/me',
    { onRequest: app.guards.user, schema: { tags, operationId: 'getMe', summary: 'Your profile', security: bearer, response: { 200: UserSchema, ...unauthorized } } },
    async (request) => serializeUser(await getAccount(ctx.db, currentUser(request).id, accountGone)),
  )

  app.patch(
    '/me',
    {
      onRequest: app.guards.user,
      schema: { tags, operationId: 'updateMe', summary: 'Update your profile', security: bearer, body: ProfilePatch, response: { 200: UserSchema, ...unauthorized } },
    },
    async (request) => updateProfile(ctx.db, currentUser(request).id, request.body),
  )

  app.post(
    '/me/password',
    {
      onRequest: app.guards.user,
      config: { rateLimitScope: 'password' },
      schema: { tags, operationId: 'changePassword', summary: 'Change your password (revokes every session)', security: bearer, body: PasswordChange, response: { ...unauthorized } },
    },
    async (request, reply) => {
      await changePassword(ctx, currentUser(request).id, request.body.old_password, request.body.new_password)
      return reply.code(204).send(undefined as never)
    },
  )

  app.post(
    '/auth/sessions/revoke',
    {
      onRequest: app.guards.user,
      // An empty POST means "my own sessions", as an empty JSON object does.
      preValidation: async (request) => {
        request.body ??= {}
      },
      schema: {
        tags,
        operationId: 'revokeSessions',
        summary: 'End every session at once: refresh and access tokens, open sockets (staff: any user with user_id)',
        security: bearer,
        body: RevokeBody,
        response: { ...unauthorized, 403: Detail, 404: Detail },
      },
    },
    async (request, reply) => {
      const user = currentUser(request)
      const target = request.body.user_id ?? user.id
      if (target !== user.id && !user.isStaff) throw forbidden()
      await revokeSessions(ctx, target)
      return reply.code(204).send(undefined as never)
    },
  )

  const staffTags = ['accounts']
  app.get(
    '/users',
    {
      onRequest: app.guards.staff,
      schema: {
        tags: staffTags,
        operationId: 'listUsers',
        summary: 'Accounts (staff)',
        security: bearer,
        querystring: Type.Object({ ...PageQuery, search: Type.Optional(Type.String({ maxLength: 254 })) }),
        response: { 200: Paginated(AccountSchema), ...unauthorized, 403: Detail },
      },
    },
    async (request) => {
      const page = pageRequest(request.query)
      const { count, results } = await listAccounts(ctx.db, page, request.query.search)
      return buildPage(request, page, count, results)
    },
  )

  app.get(
    '/users/:id',
    {
      onRequest: app.guards.staff,
      schema: { tags: staffTags, operationId: 'getUser', summary: 'One account (staff)', security: bearer, params: IdParams, response: { 200: AccountSchema, ...unauthorized, 403: Detail, 404: Detail } },
    },
    async (request) => serializeAccount(await getAccount(ctx.db, request.params.id)),
  )

  app.patch(
    '/users/:id',
    {
      onRequest: app.guards.staff,
      schema: {
        tags: staffTags,
        operationId: 'updateUser',
        summary: 'Activate, deactivate, grant or revoke staff (staff); deactivation ends every session at once',
        security: bearer,
        params: IdParams,
        body: AccountPatch,
        response: { 200: AccountSchema, ...unauthorized, 403: Detail, 404: Detail },
      },
    },
    async (request) => serializeAccount(await updateAccount(ctx, request.params.id, request.body)),
  )
}
