// Package storagetest is the conformance suite every storage.Store backend
// must pass: Run exercises each method and each behaviour documented in
// package storage (round-trips, sentinel errors, expiry through the now
// argument, cascades, idempotence) and hammers the operations that must be
// single-use under concurrency.
//
// Backends call Run from their own tests with a function that opens a
// fresh, migrated store; the suite never mocks the database.
//
// Only tests import this package. It imports package storage and nothing
// else from Gatehouse, and no backend.
package storagetest
