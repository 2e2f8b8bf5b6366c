import { Type, type Static } from '@fastify/type-provider-typebox'
import { PG_INT_MAX, Timestamp } from '../http/schemas.js'

const line = (max: number) => Type.String({ maxLength: max })

export const AddressSchema = Type.Object({
  line1: line(255),
  line2: line(255),
  city: line(100),
  state: line(100),
  postal_code: line(20),
  country: line(100),
})

export const UserSchema = Type.Object({
  id: Type.Integer(),
  email: Type.String({ format: 'email' }),
  first_name: Type.String(),
  last_name: Type.String(),
  phone: Type.String(),
  address: AddressSchema,
  is_staff: Type.Boolean(),
  date_joined: Timestamp,
})
export type UserOut = Static<typeof UserSchema>

/** The staff view of an account. */
export const AccountSchema = Type.Object({ ...UserSchema.properties, is_active: Type.Boolean() })
export type AccountOut = Static<typeof AccountSchema>

export const AccountPatch = Type.Object({
  is_active: Type.Optional(Type.Boolean()),
  is_staff: Type.Optional(Type.Boolean()),
})

export const RevokeBody = Type.Object({
  user_id: Type.Optional(Type.Integer({ minimum: 1, maximum: PG_INT_MAX, description: 'staff only: whose sessions to end (default: your own)' })),
})

export const RegisterBody = Type.Object({
  email: Type.String({ format: 'email', maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: 4096 }),
  first_name: Type.Optional(line(150)),
  last_name: Type.Optional(line(150)),
})

export const TokenBody = Type.Object({
  email: Type.String({ minLength: 1, maxLength: 254 }),
  password: Type.String({ minLength: 1, maxLength: 4096 }),
})

export const TokenPair = Type.Object({ access: Type.String(), refresh: Type.String() })
export const RefreshBody = Type.Object({ refresh: Type.String({ minLength: 1, maxLength: 4096 }) })
export const VerifyBody = Type.Object({ token: Type.String({ minLength: 1, maxLength: 4096 }) })

export const ProfilePatch = Type.Object({
  first_name: Type.Optional(line(150)),
  last_name: Type.Optional(line(150)),
  phone: Type.Optional(Type.String({ maxLength: 32, pattern: '^[0-9+() .-]*$' })),
  address: Type.Optional(Type.Partial(AddressSchema)),
})

export const PasswordChange = Type.Object({
  old_password: Type.String({ minLength: 1, maxLength: 4096 }),
  new_password: Type.String({ minLength: 1, maxLength: 4096 }),
})
