// Package keys owns Gatehouse's token signing keys: generating them (RS256
// with RSA-2048, ES256, EdDSA), encrypting private keys at rest under the
// key-encryption key (AES-256-GCM over PKCS#8, bound to kid and alg), and
// the in-memory Manager that signs tokens, verifies Gatehouse's own tokens
// and serves the JWKS.
//
// The Manager reads keys from storage at start-up and then polls
// (Refresh/Run); everything on the request path (Sign, Verify, JWKS) reads
// an immutable in-memory snapshot and never touches the database, as
// DESIGN.md ("Scale") requires. Key ids are RFC 7638 thumbprints, so every
// replica names a key the same way and serves byte-identical JWKS.
//
// A key's lifecycle (next → active → retired, or revoked) is stored in
// storage.SigningKey.State; this package publishes next, active and retired
// keys, signs only with active ones and ignores revoked ones entirely.
//
// This package imports only storage and audit (to record key changes) from
// Gatehouse. It must not import oauth, oidc or any HTTP code: those call it.
package keys
