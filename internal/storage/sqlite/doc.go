// Package sqlite is the embedded storage backend: storage.Store on a single
// SQLite file through the pure-Go modernc.org/sqlite driver (no cgo). It is
// the zero-setup default of `idp dev` and suits a single node.
//
// The file may be shared by several processes at once (the server and the
// idp CLI): connections use WAL, a busy timeout, and BEGIN IMMEDIATE for
// every transaction, so writers queue instead of failing, and Migrate holds
// a lock file while it works. Writes are serialized by SQLite, which is also
// what makes code redemption, request consumption and refresh token
// rotation single-use.
//
// Times are stored as INTEGER unix microseconds and string lists as JSON
// arrays; this package converts both ways with its own explicit SQL, never
// by rewriting the Postgres backend's.
//
// Only cmd/idp and tests import this package; everything else depends on
// the storage interfaces. It must not import any protocol package (oauth,
// oidc, keys) or any other storage backend.
package sqlite
