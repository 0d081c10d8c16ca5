// Package server assembles Gatehouse's HTTP server from its parts: it builds
// the keys manager, session manager, user service, renderer, oauth server
// and OIDC provider over one store, mounts their handlers under the
// issuer's path with the security middleware, runs the background loops
// (key refresh, client cache, expired-row cleanup, back-channel logout
// delivery) and shuts down gracefully.
//
// It is the only package that knows every other one; only cmd/idp and tests
// import it. It reads no flags or environment: Config arrives filled in.
package server
