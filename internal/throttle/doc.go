// Package throttle slows down and then stops password guessing at the
// sign-in form: per account (keyed on the normalized email, so an address
// without an account is throttled exactly like one with) and per client IP.
//
// It owns the throttle policy (when a failure count means a delay, when a
// lock) and the keys it counts under; the counts themselves live in storage
// (storage.LoginThrottleStore), so that every instance sees the same ones.
// A delay is a time before which the next attempt is refused (the caller
// answers 429 with Retry-After), never a sleep on the server.
//
// It imports storage only, and no protocol or HTTP package: the login
// handler in package oidc calls it.
package throttle
