package ui

import (
	"encoding/json"
	"fmt"
	"io/fs"

	"github.com/gatehouse-idp/gatehouse/web"
)

// The supported languages. English is first: it is the fallback for
// negotiation and for missing messages, and the zero Locale.
var localeTags = [...]string{"en", "zh-Hans"}

// catalogs[i] holds the messages of localeTags[i]. They are read once from
// the embedded files and never modified.
var catalogs = mustLoadCatalogs(web.Locales)

func mustLoadCatalogs(fsys fs.FS) [len(localeTags)]map[string]string {
	var cs [len(localeTags)]map[string]string
	for i, tag := range localeTags {
		c, err := loadCatalog(fsys, tag)
		if err != nil {
			// The catalogs are compiled into the binary; the tests read
			// them too, so a broken one never gets past go test.
			panic("ui: " + err.Error())
		}
		cs[i] = c
	}
	return cs
}

func loadCatalog(fsys fs.FS, tag string) (map[string]string, error) {
	b, err := fs.ReadFile(fsys, tag+".json")
	if err != nil {
		return nil, fmt.Errorf("read catalog %s: %w", tag, err)
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("parse catalog %s: %w", tag, err)
	}
	return m, nil
}

// Locale is a supported language and its messages. The zero value is
// English. Get one from Negotiate.
type Locale struct {
	i int // index into localeTags and catalogs
}

// Tag returns the BCP 47 tag of the locale: "en" or "zh-Hans". It is what
// Render sends as Content-Language and as <html lang>.
func (l Locale) Tag() string { return localeTags[l.i] }

// T returns the message for key, formatted with args as by fmt.Sprintf when
// args are given. A key missing in a translation falls back to English; a
// key missing in English returns the key itself, so the gap shows (in a
// page and in tests) instead of an empty string.
func (l Locale) T(key string, args ...any) string {
	return translate(&catalogs, l.i, key, args...)
}

func (l Locale) lookup(key string) (string, bool) {
	return lookup(&catalogs, l.i, key)
}

func translate(cs *[len(localeTags)]map[string]string, i int, key string, args ...any) string {
	msg, ok := lookup(cs, i, key)
	if !ok {
		return key
	}
	if len(args) == 0 {
		// Not through Sprintf: a message may contain a literal "%".
		return msg
	}
	return fmt.Sprintf(msg, args...)
}

func lookup(cs *[len(localeTags)]map[string]string, i int, key string) (string, bool) {
	if msg, ok := cs[i][key]; ok {
		return msg, true
	}
	msg, ok := cs[0][key] // English
	return msg, ok
}
