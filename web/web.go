// Package web holds the files Gatehouse serves to browsers, embedded into the
// binary: the html/template pages, the stylesheet and the message catalogs.
//
// It only carries files. Parsing, rendering and translation live in
// internal/ui, which is the one package that should read these.
package web

import (
	"embed"
	"io/fs"
)

//go:embed templates static locales
var files embed.FS

var (
	// Templates holds the html/template files (layout.html and one file
	// per page), at the root of the FS.
	Templates fs.FS = sub("templates")
	// Static holds the files served under /static/ (gatehouse.css).
	Static fs.FS = sub("static")
	// Locales holds the message catalogs, one flat JSON object of
	// key → message per language: en.json, zh-Hans.json.
	Locales fs.FS = sub("locales")
)

func sub(dir string) fs.FS {
	f, err := fs.Sub(files, dir)
	if err != nil {
		// Only possible for an invalid name, which would be a typo above.
		panic("web: " + err.Error())
	}
	return f
}
