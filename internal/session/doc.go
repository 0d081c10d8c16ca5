// Package session owns login sessions at the IdP: the cookie that carries a
// session's secret, starting a session at sign-in under the
// concurrent-session limit, finding the current one, idle and absolute
// timeouts, listing a person's sessions and ending them. Sessions end only
// in storage: EndSession, EndUserSessions, or an eviction inside
// CreateSessionWithLimit (which shares EndSession's code), so their bound
// grants, refresh tokens and whatever else must follow the end of a session
// always do.
//
// The cookie holds only a 256-bit random secret; storage keeps its SHA-256
// hash and the session's state. The public session id (the OIDC sid) is a
// separate random value, so publishing sid in ID tokens reveals nothing
// that could be replayed as a cookie.
//
// It imports storage and secrets; it must not import oauth or oidc.
package session
