// Package postgres is the production storage backend: storage.Store on
// PostgreSQL through pgx's native pool, with the schema applied by goose
// from the embedded migrations.
//
// Every method is one SQL statement or one short transaction, and the ones
// that race (code redemption, auth request consumption, key creation,
// refresh token rotation against revocation) rely on row locks and unique
// indexes in the database, not on anything held in this process, so they
// stay correct with many replicas on one database.
//
// Only cmd/idp and tests import this package; everything else depends on
// the storage interfaces. It must not import any protocol package (oauth,
// oidc, keys) or any other storage backend.
package postgres
