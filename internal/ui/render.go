package ui

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/web"
)

// pageTemplates are the page files in web.Templates, each executed inside
// layout.html.
var pageTemplates = []string{"login", "consent", "error", "home", "account", "logout", "signed_out"}

// Renderer renders Pages. It is safe for concurrent use.
type Renderer struct {
	// Logger receives template errors. Set it before the first Render;
	// nil means slog.Default().
	Logger *slog.Logger

	pages   map[string]*template.Template
	base    string
	cssHref string
}

// view is what the templates see as ".".
type view struct {
	L    Locale
	Lang string
	Base string // the issuer's path ("" or e.g. "/idp"): prefix of every link and form
	CSS  string // stylesheet URL, versioned so a new release is not cached stale
	Page any
}

// NewRenderer parses the embedded templates and renders every page once in
// every language, so that a broken template fails at start-up rather than
// on a user's request. basePath is the issuer's path ("" for an issuer at
// the root of its host, or e.g. "/idp"); every link and form in the pages
// is under it.
func NewRenderer(basePath string) (*Renderer, error) {
	if basePath != "" && (!strings.HasPrefix(basePath, "/") || strings.HasSuffix(basePath, "/")) {
		return nil, fmt.Errorf("base path %q must start with / and not end with /", basePath)
	}
	hash, err := staticHash("gatehouse.css")
	if err != nil {
		return nil, err
	}
	r := &Renderer{
		pages:   make(map[string]*template.Template, len(pageTemplates)),
		base:    basePath,
		cssHref: basePath + "/static/gatehouse.css?v=" + hash[:12],
	}
	for _, name := range pageTemplates {
		t, err := template.New(name).ParseFS(web.Templates, "layout.html", name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse template %s: %w", name, err)
		}
		for _, block := range []string{"layout", "title", "content"} {
			if t.Lookup(block) == nil {
				return nil, fmt.Errorf("template %s: no %q block", name, block)
			}
		}
		r.pages[name] = t
	}
	samples := []Page{
		LoginPage{ErrorKey: "login.error.invalid", ClientName: "c", Email: "e"},
		LoginPage{RetryAfter: 90 * time.Second},
		ConsentPage{ClientName: "c", ClientURI: "https://c", UserEmail: "e", Scopes: []string{"openid", "x"}},
		ErrorPage{Detail: "d"},
		HomePage{SignedIn: true, Name: "n", Email: "e", IssuerURL: "https://i", CSRFToken: "t"},
		HomePage{},
		AccountPage{Name: "n", Email: "e", NoticeKey: "account.notice.signed_out",
			Sessions: []AccountSession{{ID: "s", Browser: "b", OS: "o", IP: "i", Current: true}, {ID: "t"}},
			Apps:     []AccountApp{{ClientID: "c", Name: "c", Scopes: []string{"openid", "x"}}}},
		AccountPage{Email: "e"},
		LogoutPage{ClientName: "c", UserEmail: "e", IDTokenHint: "h", ClientID: "i", PostLogoutRedirectURI: "https://c/bye", State: "s", UILocales: "en"},
		LogoutPage{},
		SignedOutPage{},
	}
	for i := range localeTags {
		for _, p := range samples {
			if _, err := r.execute(Locale{i: i}, p); err != nil {
				return nil, err
			}
		}
	}
	return r, nil
}

func (r *Renderer) execute(loc Locale, page Page) ([]byte, error) {
	if page == nil {
		return nil, errors.New("render: nil page")
	}
	if v := reflect.ValueOf(page); v.Kind() == reflect.Pointer && v.IsNil() {
		return nil, fmt.Errorf("render: nil %T", page)
	}
	name, data := page.view(loc)
	t, ok := r.pages[name]
	if !ok {
		return nil, fmt.Errorf("render: no template %q", name)
	}
	var buf bytes.Buffer
	err := t.ExecuteTemplate(&buf, "layout", view{L: loc, Lang: loc.Tag(), Base: r.base, CSS: r.cssHref, Page: data})
	if err != nil {
		return nil, fmt.Errorf("render %s (%s): %w", name, loc.Tag(), err)
	}
	return buf.Bytes(), nil
}

// Render writes page as a complete HTML response with the given status.
//
// The page is rendered into memory first: if a template fails, the client
// gets a plain 500 and the error goes to r.Logger, never half a page.
func (r *Renderer) Render(w http.ResponseWriter, status int, loc Locale, page Page) {
	body, err := r.execute(loc, page)
	if err != nil {
		r.logger().Error("ui: render page", "err", err)
		h := w.Header()
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
		http.Error(w, http.StatusText(http.StatusInternalServerError), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Language", loc.Tag())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", r.contentSecurityPolicy(page.FormActionOrigins()))
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	// Same-origin: the page URLs carry request ids that other sites (the
	// client's home page link) have no need for. Not no-referrer, which
	// would make browsers send "Origin: null" on our own form posts.
	h.Set("Referrer-Policy", "same-origin")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (r *Renderer) logger() *slog.Logger {
	if r.Logger != nil {
		return r.Logger
	}
	return slog.Default()
}

// contentSecurityPolicy allows nothing but our stylesheet and images, and
// form submissions to ourselves and to the given origins. There are no
// scripts, so none are allowed.
func (r *Renderer) contentSecurityPolicy(origins []string) string {
	var b strings.Builder
	b.WriteString("default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'")
	for _, o := range origins {
		src, ok := cspSource(o)
		if !ok {
			// Dropping it can only block a redirect, never open anything.
			r.logger().Warn("ui: form-action origin is not a valid origin; left out of the CSP", "origin", o)
			continue
		}
		b.WriteByte(' ')
		b.WriteString(src)
	}
	b.WriteString("; frame-ancestors 'none'; base-uri 'none'")
	return b.String()
}

// cspSource turns an origin (or any absolute URL: only its origin is used)
// into a CSP source expression (CSP3 §2.3.1): "https://host[:port]" for
// http(s), "scheme:" for the private-use schemes of native apps (RFC 8252
// §7.1). Anything else is refused, so that no value can add a directive
// (";") or a keyword to the policy.
func cspSource(s string) (string, bool) {
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" || !validScheme(u.Scheme) {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	switch scheme {
	case "http", "https":
	case "javascript", "data", "blob", "filesystem", "vbscript", "about", "file":
		// Never a redirect target; allowing them would only widen the policy.
		return "", false
	default:
		return scheme + ":", true
	}
	if u.User != nil || u.Host == "" || !validHost(u.Host) {
		return "", false
	}
	return scheme + "://" + strings.ToLower(u.Host), true
}

// validScheme: RFC 3986 §3.1, ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
func validScheme(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && ('0' <= c && c <= '9' || c == '+' || c == '-' || c == '.'):
		default:
			return false
		}
	}
	return s != ""
}

// validHost allows DNS names, IPv4, bracketed IPv6 and a port: the
// characters a CSP host-source and port-part can hold.
func validHost(s string) bool {
	for _, c := range []byte(s) {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '.' || c == '-' || c == ':' || c == '[' || c == ']':
		default:
			return false
		}
	}
	return true
}

// staticHash returns the hex SHA-256 of a file in web.Static, for cache
// busting and ETags.
func staticHash(name string) (string, error) {
	f, err := web.Static.Open(name)
	if err != nil {
		return "", fmt.Errorf("open static %s: %w", name, err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read static %s: %w", name, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
