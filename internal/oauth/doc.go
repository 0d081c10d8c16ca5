// Package oauth implements OAuth 2.0 (RFC 6749) as Gatehouse speaks it:
// protocol errors, parameter parsing, exact redirect URI matching, PKCE
// (RFC 7636), client authentication, authorization request validation,
// authorization code issuance and redemption, RFC 9068 access tokens and the
// token endpoint.
//
// Protocol functions take typed requests and return (response, error);
// only the writers in this package (WriteJSON/WriteTokenError for the token
// endpoint's JSON, and CodeRedirectURL/ErrorRedirectURL for authorize
// redirects) turn results into HTTP.
//
// It imports storage and secrets. It must not import oidc, keys or any HTTP
// server package: where it needs a signer or an ID token minter it declares
// a small interface (Signer, Verifier, IDTokenMinter) that higher packages
// implement.
package oauth
