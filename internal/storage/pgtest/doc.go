// Package pgtest gives tests their own real PostgreSQL database: a new,
// uniquely named, migrated database per test, dropped when the test ends.
// Postgres is never mocked (DESIGN.md, "Storage").
//
// The server comes from GATEHOUSE_TEST_DATABASE_URL (an admin connection
// that may CREATE DATABASE), by default a local server with trust auth; if
// that server does not answer and Docker does, a throwaway container is
// started instead. With neither, tests fail with a message saying so: they
// do not skip, because a suite that silently skips its database tests
// looks green while testing nothing.
//
// A fresh database is a copy of a template that holds the migrated schema,
// so a test pays for CREATE DATABASE, not for running the migrations. The
// template is named after a hash of the migration files: it is built once
// per schema version (under an advisory lock, so parallel test binaries
// build it once between them), reused by later runs, and a changed
// migration simply gets a new template.
//
// Only tests import this package. It imports the postgres backend and the
// migrations, nothing else from Gatehouse.
package pgtest
