// Package clients owns OAuth client registration: parsing RFC 7591 client
// metadata, validating it and applying its defaults, minting client ids and
// secrets, and the RFC 7591 §3.2.1 registration response. It also exports
// ValidateRedirectURI, the one definition of an acceptable redirect URI.
//
// Client secrets are 256-bit random values; only their SHA-256 (package
// secrets) is stored. The clear secret exists once, in the Registration
// returned to whoever registered the client, and is never logged.
//
// Cache keeps clients in memory for the token endpoint, so that a known
// client costs no database read (DESIGN.md, "Scale"). It polls
// storage.ClientStore.ClientsVersion and drops everything when another
// process (a replica, the CLI) has created or deleted a client.
//
// Matching a redirect URI at authorization time, client authentication and
// the HTTP registration endpoint belong to the protocol packages, which call
// this one. This package talks to storage through storage.ClientStore only;
// it must not import a storage backend (postgres, sqlite), a protocol
// package (oauth, oidc) or net/http.
package clients
