// Package audit records the audit trail: who did what, when, from where.
//
// It owns the event types (the constants below), the actors' spelling and
// the Recorder, which takes events from request handlers, the CLI and the
// key scheduler and writes them to storage in batches on its own
// goroutine, so that recording never adds a database round trip to a
// request.
//
// It imports only storage from Gatehouse, so that every other package may
// record events: oauth, oidc, keys and cmd/idp import it, never the other
// way round. A nil *Recorder records nothing, so
// packages work without one (unit tests).
//
// What is never recorded: passwords, tokens, codes, client secrets, cookie
// values, and the email address typed into a failed sign-in (see
// LoginFailed). Details carry identifiers and facts only.
package audit
