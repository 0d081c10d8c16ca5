// Package users owns the people who sign in to Gatehouse: creating them
// (with validated, normalized input), reading them, disabling and enabling
// them, setting their passwords, hashing passwords with argon2id and
// checking a password at sign-in.
//
// Passwords never leave this package in the clear and are never logged.
// Stored hashes are PHC strings ("$argon2id$v=19$m=...,t=...,p=...$salt$key")
// that carry their own parameters, so the parameters for new hashes can be
// raised later without invalidating old ones.
//
// storage.User carries the password hash; log users with LogValue, which
// leaves it out, never with the struct itself.
//
// Disabling a user or setting their password also ends their login
// sessions and revokes their grants, so that nothing signed in with the old
// state outlives it (beyond JWT access tokens, which expire on their own).
//
// This package talks to storage through Store: storage.UserStore plus
// ending a user's sessions and revoking their grants. It must not
// import a storage backend (postgres, sqlite), a protocol package (oauth,
// oidc) or net/http: HTTP handlers and the CLI call it, not the other way
// round.
package users
