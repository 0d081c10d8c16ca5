package ui

import (
	"io/fs"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/gatehouse-idp/gatehouse/web"
)

func TestStaticHandler(t *testing.T) {
	css, err := fs.ReadFile(web.Static, "gatehouse.css")
	if err != nil {
		t.Fatal(err)
	}
	h := StaticHandler()
	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest("GET", "/static/gatehouse.css", nil))
	etag := get.Header().Get("ETag")

	tests := []struct {
		name, method, path, ifNoneMatch string
		wantStatus                      int
		wantBody                        bool
	}{
		{"css", "GET", "/static/gatehouse.css", "", 200, true},
		{"head", "HEAD", "/static/gatehouse.css", "", 200, false},
		{"not modified", "GET", "/static/gatehouse.css", etag, 304, false},
		{"versioned URL", "GET", "/static/gatehouse.css?v=abc", "", 200, true},
		{"unknown file", "GET", "/static/nope.css", "", 404, false},
		{"directory", "GET", "/static/", "", 404, false},
		{"traversal", "GET", "/static/../web.go", "", 404, false},
		{"outside prefix", "GET", "/gatehouse.css", "", 404, false},
		{"post", "POST", "/static/gatehouse.css", "", 405, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(tt.method, tt.path, nil)
			if tt.ifNoneMatch != "" {
				r.Header.Set("If-None-Match", tt.ifNoneMatch)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tt.wantStatus {
				t.Fatalf("status = %d, want %d", w.Code, tt.wantStatus)
			}
			if tt.wantStatus >= 300 && tt.wantStatus != http.StatusNotModified {
				return
			}
			for k, v := range map[string]string{
				"Cache-Control":          "public, max-age=86400",
				"X-Content-Type-Options": "nosniff",
				"ETag":                   etag,
			} {
				if got := w.Header().Get(k); got != v || v == "" {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.wantStatus == 200 {
				if ct := w.Header().Get("Content-Type"); ct != "text/css; charset=utf-8" {
					t.Errorf("Content-Type = %q", ct)
				}
			}
			if got := w.Body.String() == string(css); got != tt.wantBody {
				t.Errorf("body is the stylesheet: %v, want %v", got, tt.wantBody)
			}
		})
	}
}
