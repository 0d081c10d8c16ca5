package ui

import (
	"io/fs"
	"net/http"
	"strings"

	"github.com/gatehouse-idp/gatehouse/web"
)

// StaticHandler serves the embedded stylesheet (web.Static) under /static/.
// Mount it for that prefix, e.g. mux.Handle("GET /static/", ui.StaticHandler());
// it strips "/static/" itself. Directories are not listed.
//
// Pages link the stylesheet with a content hash in the query, so a new
// release is fetched at once despite the day-long cache lifetime.
func StaticHandler() http.Handler {
	etags := map[string]string{}
	_ = fs.WalkDir(web.Static, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil
		}
		if h, err := staticHash(name); err == nil {
			etags[name] = `"` + h[:32] + `"`
		}
		return nil
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, http.StatusText(http.StatusMethodNotAllowed), http.StatusMethodNotAllowed)
			return
		}
		name, ok := strings.CutPrefix(r.URL.Path, "/static/")
		etag, found := etags[name]
		if !ok || !found {
			http.NotFound(w, r)
			return
		}
		h := w.Header()
		h.Set("Cache-Control", "public, max-age=86400")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("ETag", etag)
		// ServeFileFS sets Content-Type from the extension and answers
		// If-None-Match with 304. Only known files get here, so it never
		// lists a directory or redirects.
		http.ServeFileFS(w, r, web.Static, name)
	})
}
