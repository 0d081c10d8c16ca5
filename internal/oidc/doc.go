// Package oidc is Gatehouse's OpenID Connect provider: discovery (OIDC
// Discovery 1.0 and RFC 8414), the JWKS endpoint, the authorization
// endpoint with its sign-in and consent steps, ID tokens, userinfo,
// RP-initiated logout (the end-session endpoint and its confirmation page),
// and the account page where a person sees and ends their own login
// sessions and takes back the access they gave apps.
//
// It composes the lower packages: oauth for the protocol rules and the
// token endpoint, session for login sessions, users for sign-in, throttle
// for brute-force protection of the sign-in form, keys for
// signing, ui for the pages, storage for state. Nothing below it imports
// it; cmd/idp (through package server) wires it.
package oidc
