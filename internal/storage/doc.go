// Package storage defines what Gatehouse keeps: users, clients, login
// sessions, pending authorization requests, authorization codes, grants,
// refresh tokens, opaque access tokens and revoked JWTs, consents,
// signing keys and failed sign-in counters, and the Store interface every
// backend implements.
//
// Backends live in sub-packages (postgres, sqlite) and each writes its own
// SQL. The conformance suite in storagetest runs against all of them.
//
// Rules every backend follows:
//   - Secrets are never stored: callers pass SHA-256 hashes of session
//     cookies, codes, refresh and opaque access tokens and client secrets;
//     private keys arrive encrypted.
//   - Time comes from the caller (a now argument or a field); SQL never
//     calls now(). Times come back in UTC, truncated to microseconds.
//   - Single-use and state transitions are atomic statements, correct
//     when many server instances share one database.
//   - Errors wrap the sentinels below so callers can use errors.Is.
//
// This package imports no protocol package (oauth, oidc, keys): it only
// stores and returns data.
package storage
