package web

import (
	"io/fs"
	"testing"
)

func TestEmbeddedFiles(t *testing.T) {
	tests := []struct {
		name string
		fsys fs.FS
		file string
	}{
		{"layout", Templates, "layout.html"},
		{"login", Templates, "login.html"},
		{"consent", Templates, "consent.html"},
		{"error", Templates, "error.html"},
		{"home", Templates, "home.html"},
		{"account", Templates, "account.html"},
		{"stylesheet", Static, "gatehouse.css"},
		{"English", Locales, "en.json"},
		{"Simplified Chinese", Locales, "zh-Hans.json"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := fs.ReadFile(tt.fsys, tt.file)
			if err != nil {
				t.Fatal(err)
			}
			if len(b) == 0 {
				t.Error("empty file")
			}
		})
	}
}
