// Package integration holds Gatehouse's end-to-end tests: the real HTTP
// server on a real listener over a real database, driven by real OAuth 2.0
// and OpenID Connect client libraries (golang.org/x/oauth2,
// github.com/coreos/go-oidc/v3) and by a cookie-jar browser that submits
// the real sign-in and consent forms.
package integration
