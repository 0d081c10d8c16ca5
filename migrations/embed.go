package migrations

import "embed"

// FS holds the goose migrations of every dialect, one folder each
// (postgres/, sqlite/). Backends take fs.Sub of their own folder.
//
//go:embed postgres/*.sql sqlite/*.sql
var FS embed.FS
