// Package oidc is Gatehouse's OpenID Connect provider: discovery (OIDC
// Discovery 1.0 and RFC 8414), the JWKS endpoint, the authorization
// endpoint with its sign-in and consent steps, ID tokens, userinfo, and
// RP-initiated logout (the end-session endpoint and its confirmation page).
//
// It composes the lower packages: oauth for the protocol rules and the
// token endpoint, session for login sessions, users for sign-in, keys for
// signing, ui for the pages, storage for state. Nothing below it imports
// it; cmd/idp (through package server) wires it.
package oidc
