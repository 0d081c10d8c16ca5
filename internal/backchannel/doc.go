// Package backchannel delivers OpenID Connect Back-Channel Logout 1.0
// logout tokens: when a login session ends, every client that took part in
// it and registered a backchannel_logout_uri is sent a signed logout token,
// server to server.
//
// Storage queues the deliveries (the outbox rows that EndSession and
// EndUserSessions add in their own transaction); this package owns what
// happens next: claiming due rows with a lease, building and signing the
// logout token, POSTing it, and recording delivery, retry with exponential
// backoff, or giving up. It never holds a transaction while signing or
// sending.
//
// It depends on storage (the outbox and clients) and on a Signer (package
// keys implements it). It must not import the protocol packages (oauth,
// oidc), the HTTP server, or a concrete storage backend.
package backchannel
