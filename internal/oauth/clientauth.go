package oauth

import (
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net/url"
	"strings"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Client authentication methods (RFC 7591 §2, OIDC Core §9).
const (
	AuthSecretBasic = "client_secret_basic"
	AuthSecretPost  = "client_secret_post"
	AuthNone        = "none"
)

// ClientCredentials is what a request to the token endpoint presents to
// identify its client.
type ClientCredentials struct {
	ID     string
	Secret string
	Method string // one of the Auth* constants
}

// String keeps the secret out of anything that prints credentials.
func (c ClientCredentials) String() string { return "client " + c.ID + " via " + c.Method }

// LogValue keeps the secret out of logs.
func (c ClientCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("client_id", c.ID), slog.String("method", c.Method))
}

// ParseClientCredentials reads client credentials from the Authorization
// header value and the request body.
//
// RFC 6749 §2.3: a client MUST NOT use more than one authentication method
// in a request, so a Basic header together with client_secret in the body
// is refused.
func ParseClientCredentials(authorization string, form url.Values) (ClientCredentials, *Error) {
	if authorization != "" {
		id, secret, ok := parseBasic(authorization)
		if !ok {
			return ClientCredentials{}, InvalidClient("malformed Basic authorization header")
		}
		if form.Has("client_secret") {
			return ClientCredentials{}, InvalidRequest("client authenticated with more than one method")
		}
		if bodyID := form.Get("client_id"); bodyID != "" && bodyID != id {
			return ClientCredentials{}, InvalidRequest("client_id does not match the authenticated client")
		}
		return ClientCredentials{ID: id, Secret: secret, Method: AuthSecretBasic}, nil
	}
	id := form.Get("client_id")
	if id == "" {
		return ClientCredentials{}, InvalidClient("client authentication is required")
	}
	if form.Has("client_secret") {
		return ClientCredentials{ID: id, Secret: form.Get("client_secret"), Method: AuthSecretPost}, nil
	}
	return ClientCredentials{ID: id, Method: AuthNone}, nil
}

// parseBasic decodes "Basic base64(id:secret)". RFC 6749 §2.3.1: id and
// secret are form-urlencoded before they are joined, so they are decoded
// here (net/http's BasicAuth does not do that).
func parseBasic(h string) (id, secret string, ok bool) {
	const prefix = "basic "
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", "", false
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(h[len(prefix):]))
	if err != nil {
		return "", "", false
	}
	rawID, rawSecret, found := strings.Cut(string(raw), ":")
	if !found {
		return "", "", false
	}
	if id, err = url.QueryUnescape(rawID); err != nil || id == "" {
		return "", "", false
	}
	if secret, err = url.QueryUnescape(rawSecret); err != nil {
		return "", "", false
	}
	return id, secret, true
}

// ClientGetter is the part of storage client authentication needs.
type ClientGetter interface {
	GetClient(ctx context.Context, id string) (storage.Client, error)
}

// dummySecretHash is compared against when the client does not exist, so
// that an unknown client_id costs the same as a wrong secret.
var dummySecretHash = secrets.Hash("gatehouse-dummy-client-secret")

// AuthenticateClient checks creds against the registered client. The client
// must use the method it registered (token_endpoint_auth_method); a secret
// is compared by its SHA-256 hash in constant time.
func AuthenticateClient(ctx context.Context, clients ClientGetter, creds ClientCredentials) (storage.Client, *Error) {
	c, err := clients.GetClient(ctx, creds.ID)
	if errors.Is(err, storage.ErrNotFound) {
		secrets.Matches(creds.Secret, dummySecretHash)
		return storage.Client{}, InvalidClient("client authentication failed")
	}
	if err != nil {
		return storage.Client{}, TemporarilyUnavailable(err)
	}
	registered := c.Metadata.TokenEndpointAuthMethod
	if registered == "" {
		registered = AuthSecretBasic
	}
	if creds.Method != registered {
		return storage.Client{}, InvalidClient("client must authenticate with " + registered)
	}
	if registered == AuthNone {
		if len(c.SecretHash) != 0 {
			// A confidential client registered as public would be a storage
			// inconsistency; fail closed.
			return storage.Client{}, InvalidClient("client authentication failed")
		}
		return c, nil
	}
	if !secrets.Matches(creds.Secret, c.SecretHash) {
		return storage.Client{}, InvalidClient("client authentication failed")
	}
	return c, nil
}

// IsPublic reports whether c authenticates with no secret.
func IsPublic(c storage.Client) bool {
	return c.Metadata.TokenEndpointAuthMethod == AuthNone
}
