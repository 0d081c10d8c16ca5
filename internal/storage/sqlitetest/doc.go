// Package sqlitetest gives tests a fresh, migrated SQLite store in a
// temporary directory, for any package whose tests need real storage
// without a Postgres server.
//
// Only tests import this package. It imports the sqlite backend and package
// storage, nothing else from Gatehouse.
package sqlitetest
