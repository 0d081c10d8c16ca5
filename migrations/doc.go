// Package migrations embeds Gatehouse's database schema: goose SQL
// migrations, one folder per dialect (postgres/, sqlite/), so the binary can
// migrate a database without files on disk.
//
// Each dialect has its own hand-written SQL. The two schemas hold the same
// tables and constraints, but are not generated from each other: a dialect
// rewrite is where precision and constraints get lost (see CONVENTIONS.md).
// A schema change adds a new numbered file to both folders; applied files
// are never edited.
//
// This package imports nothing; the storage backends import it.
package migrations
