package oauth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// AccessTokenType is the JWT typ of RFC 9068 access tokens.
const AccessTokenType = "at+jwt"

// Access token formats a client can choose (client metadata
// access_token_format).
const (
	FormatJWT    = "jwt"
	FormatOpaque = "opaque"
)

// maxClockSkew is how far in the future an iat may be: replicas' clocks
// differ a little, never by minutes.
const maxClockSkew = time.Minute

// AccessTokenClaims are the claims of an RFC 9068 JWT access token. They
// carry identifiers only, never personal data (DESIGN.md, "Tokens").
type AccessTokenClaims struct {
	Issuer    string           `json:"iss"`
	Subject   string           `json:"sub"`
	Audience  jwt.Audience     `json:"aud"`
	ClientID  string           `json:"client_id"`
	Scope     string           `json:"scope,omitempty"`
	ID        string           `json:"jti"`
	IssuedAt  *jwt.NumericDate `json:"iat"`
	ExpiresAt *jwt.NumericDate `json:"exp"`
	AuthTime  *jwt.NumericDate `json:"auth_time,omitempty"`
}

// GrantID returns the grant the token was issued under, or "" for a
// machine token. A user's token has the jti "<grant id>.<random>": unique
// per token, and it lets introspection and userinfo find the grant without
// a per-token row. A machine token's jti is random, with no dot.
func (c AccessTokenClaims) GrantID() string {
	g, _, found := strings.Cut(c.ID, ".")
	if !found {
		return ""
	}
	return g
}

// accessToken describes an access token to issue.
type accessToken struct {
	Subject  string // the user, or the client for a machine token
	ClientID string
	GrantID  string // "" for a machine token
	Scopes   []string
	Audience []string
	AuthTime time.Time
}

// issueAccessToken makes an access token in the client's format. For an
// opaque token it also returns the row to store; the caller stores it,
// inside its own transaction when it has one. A JWT needs no row: issuing
// one touches no database (DESIGN.md, "Scale").
func (s *Server) issueAccessToken(client storage.Client, a accessToken, now time.Time) (string, *storage.AccessToken, error) {
	if len(a.Audience) == 0 {
		a.Audience = []string{s.cfg.AccessTokenAudience}
	}
	exp := now.Add(s.cfg.AccessTokenTTL)
	if client.Metadata.AccessTokenFormat == FormatOpaque {
		tok, err := secrets.New(s.deps.Rand)
		if err != nil {
			return "", nil, fmt.Errorf("issue access token: %w", err)
		}
		return tok, &storage.AccessToken{
			TokenHash: secrets.Hash(tok),
			GrantID:   a.GrantID,
			ClientID:  a.ClientID,
			Subject:   a.Subject,
			Scopes:    a.Scopes,
			Audience:  a.Audience,
			CreatedAt: now,
			ExpiresAt: exp,
		}, nil
	}
	nonce, err := secrets.NewID(s.deps.Rand)
	if err != nil {
		return "", nil, fmt.Errorf("issue access token: %w", err)
	}
	jti := nonce
	if a.GrantID != "" {
		jti = a.GrantID + "." + nonce
	}
	claims := AccessTokenClaims{
		Issuer:    s.cfg.Issuer,
		Subject:   a.Subject,
		Audience:  jwt.Audience(a.Audience),
		ClientID:  a.ClientID,
		Scope:     JoinScope(a.Scopes),
		ID:        jti,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	if !a.AuthTime.IsZero() {
		claims.AuthTime = jwt.NewNumericDate(a.AuthTime)
	}
	tok, err := s.deps.Signer.Sign(s.cfg.SigningAlg, AccessTokenType, claims)
	if err != nil {
		return "", nil, fmt.Errorf("issue access token: %w", err)
	}
	return tok, nil, nil
}

// looksLikeJWT tells a compact JWS from an opaque token, which is
// base64url and has no dots.
func looksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// verifyAccessJWT checks a JWT access token's signature, type, issuer and
// lifetime (RFC 9068 §4). Audience is the caller's check: introspection
// reports any audience, a resource server accepts only its own.
func (s *Server) verifyAccessJWT(token string, now time.Time) (AccessTokenClaims, bool) {
	payload, header, err := s.deps.Verifier.Verify(token)
	if err != nil {
		return AccessTokenClaims{}, false
	}
	// RFC 9068 §4: reject tokens whose typ is not at+jwt, so an ID token
	// cannot be replayed as an access token.
	typ, _ := header.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
		return AccessTokenClaims{}, false
	}
	var c AccessTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return AccessTokenClaims{}, false
	}
	switch {
	case c.Issuer != s.cfg.Issuer,
		c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time()),
		c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(maxClockSkew)),
		c.Subject == "" || c.ID == "" || c.ClientID == "":
		return AccessTokenClaims{}, false
	}
	return c, true
}
