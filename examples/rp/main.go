// Command rp is a minimal OpenID Connect relying party for trying
// Gatehouse: it runs the authorization code flow with PKCE through
// golang.org/x/oauth2 and github.com/coreos/go-oidc/v3, verifies the ID
// token and shows its claims and the userinfo response.
//
//	go run ./examples/rp -client-id ID -client-secret SECRET
//
// then open http://127.0.0.1:9000/. Register the client with the redirect
// URI http://127.0.0.1:9000/callback.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"html/template"
	"log"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

func main() {
	issuer := flag.String("issuer", "http://localhost:8080", "Gatehouse issuer URL")
	clientID := flag.String("client-id", "", "client_id from idp clients create (required)")
	clientSecret := flag.String("client-secret", "", "client_secret from idp clients create (empty for a public client)")
	listen := flag.String("listen", "127.0.0.1:9000", "address to listen on; the redirect URI is http://ADDR/callback")
	scopes := flag.String("scopes", "openid profile email", "scopes to request")
	flag.Parse()
	if *clientID == "" {
		fmt.Fprintln(os.Stderr, "rp: -client-id is required")
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	provider, err := oidc.NewProvider(ctx, *issuer)
	if err != nil {
		log.Fatalf("rp: discover %s: %v", *issuer, err)
	}
	ep := provider.Endpoint()
	if *clientSecret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams // public client: PKCE only
	}
	a := &app{
		provider: provider,
		verifier: provider.Verifier(&oidc.Config{ClientID: *clientID}),
		config: oauth2.Config{
			ClientID: *clientID, ClientSecret: *clientSecret, Endpoint: ep,
			RedirectURL: "http://" + *listen + "/callback", Scopes: strings.Fields(*scopes),
		},
		pending: map[string]pending{},
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.start)
	mux.HandleFunc("GET /callback", a.callback)
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { <-ctx.Done(); srv.Close() }()
	fmt.Printf("Open http://%s/ in your browser to sign in through %s\n", *listen, *issuer)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		log.Fatalf("rp: %v", err)
	}
}

// pending is an authorization request in flight, keyed by its state.
type pending struct{ nonce, verifier string }

type app struct {
	provider *oidc.Provider
	verifier *oidc.IDTokenVerifier
	config   oauth2.Config
	mu       sync.Mutex
	pending  map[string]pending
}

func random() string {
	b := make([]byte, 16)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// start sends the browser to Gatehouse with state, nonce and a PKCE
// challenge.
func (a *app) start(w http.ResponseWriter, r *http.Request) {
	state, p := random(), pending{nonce: random(), verifier: oauth2.GenerateVerifier()}
	a.mu.Lock()
	a.pending[state] = p
	a.mu.Unlock()
	http.Redirect(w, r, a.config.AuthCodeURL(state, oidc.Nonce(p.nonce), oauth2.S256ChallengeOption(p.verifier)), http.StatusFound)
}

// callback redeems the code, verifies the ID token and calls userinfo.
func (a *app) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		http.Error(w, "authorization failed: "+e+": "+q.Get("error_description"), http.StatusBadRequest)
		return
	}
	a.mu.Lock()
	p, ok := a.pending[q.Get("state")]
	delete(a.pending, q.Get("state"))
	a.mu.Unlock()
	if !ok {
		http.Error(w, "unknown state: start again at /", http.StatusBadRequest)
		return
	}
	tok, err := a.config.Exchange(r.Context(), q.Get("code"), oauth2.VerifierOption(p.verifier))
	if err != nil {
		http.Error(w, "token exchange failed: "+err.Error(), http.StatusBadGateway)
		return
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := a.verifier.Verify(r.Context(), raw)
	if err != nil {
		http.Error(w, "ID token rejected: "+err.Error(), http.StatusBadGateway)
		return
	}
	if idt.Nonce != p.nonce {
		http.Error(w, "ID token nonce does not match", http.StatusBadGateway)
		return
	}
	var idClaims map[string]any
	idt.Claims(&idClaims)
	info, err := a.provider.UserInfo(r.Context(), oauth2.StaticTokenSource(tok))
	var userinfo map[string]any
	if err == nil {
		info.Claims(&userinfo)
	}
	pretty := func(v any) string { b, _ := json.MarshalIndent(v, "", "  "); return string(b) }
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	page.Execute(w, map[string]string{
		"IDToken":  pretty(idClaims),
		"Userinfo": pretty(userinfo),
		"Expiry":   tok.Expiry.Format(time.RFC3339),
	})
}

var page = template.Must(template.New("").Parse(`<!doctype html>
<html lang="en"><meta charset="utf-8"><title>Signed in</title>
<body style="font-family: system-ui, sans-serif; max-width: 48rem; margin: 2rem auto">
<h1>Signed in through Gatehouse</h1>
<p>The ID token was verified against the issuer's JWKS. The access token expires at {{.Expiry}}.</p>
<h2>ID token claims</h2><pre>{{.IDToken}}</pre>
<h2>Userinfo</h2><pre>{{.Userinfo}}</pre>
<p><a href="/">Sign in again</a></p>
</body></html>`))
