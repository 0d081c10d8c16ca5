package backchannel

import (
	"encoding/base64"
	"fmt"
	"io"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// EventLogout is the event a logout token carries (Back-Channel Logout
// §2.4).
const EventLogout = "http://schemas.openid.net/event/backchannel-logout"

// TokenType is the logout token's JWS typ header (Back-Channel Logout
// §2.4, RFC 8725 §3.11): explicit typing, so that a logout token can never
// pass for an ID token or an access token.
const TokenType = "logout+jwt"

// Signer signs a JWT with the active key for alg. Package keys implements
// it.
type Signer interface {
	Sign(alg, typ string, claims any) (string, error)
}

// Claims are the claims of a logout token (Back-Channel Logout §2.4). It
// has no nonce: §2.4 forbids one, so that a logout token cannot be
// replayed as an ID token.
type Claims struct {
	Issuer    string              `json:"iss"`
	Subject   string              `json:"sub"`
	Audience  jwt.Audience        `json:"aud"`
	IssuedAt  *jwt.NumericDate    `json:"iat"`
	ExpiresAt *jwt.NumericDate    `json:"exp"`
	ID        string              `json:"jti"`
	Events    map[string]struct{} `json:"events"`
	SessionID string              `json:"sid"`
}

// TokenRequest is what one logout token is about.
type TokenRequest struct {
	Issuer    string
	ClientID  string
	Subject   string // the user's ID, as in the ID tokens
	SessionID string // the ended session's sid, as in the ID tokens
	Now       time.Time
	TTL       time.Duration
}

// NewToken builds and signs a logout token with signer's active key for
// alg. rand supplies the jti.
func NewToken(signer Signer, alg string, rand io.Reader, r TokenRequest) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return "", fmt.Errorf("logout token: jti: %w", err)
	}
	c := Claims{
		Issuer:    r.Issuer,
		Subject:   r.Subject,
		Audience:  jwt.Audience{r.ClientID},
		IssuedAt:  jwt.NewNumericDate(r.Now),
		ExpiresAt: jwt.NewNumericDate(r.Now.Add(r.TTL)),
		// §2.4: a unique identifier, which receivers may use to refuse
		// a replayed token.
		ID:        base64.RawURLEncoding.EncodeToString(b[:]),
		Events:    map[string]struct{}{EventLogout: {}},
		SessionID: r.SessionID,
	}
	tok, err := signer.Sign(alg, TokenType, c)
	if err != nil {
		return "", fmt.Errorf("logout token: %w", err)
	}
	return tok, nil
}
