package oauth

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
)

// AccessTokenType is the JWT typ of RFC 9068 access tokens.
const AccessTokenType = "at+jwt"

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

// GrantID returns the grant the token was issued under. The jti is
// "<grant id>.<random>": unique per token, and it lets introspection and
// userinfo find the grant without a per-token row.
func (c AccessTokenClaims) GrantID() string {
	g, _, _ := strings.Cut(c.ID, ".")
	return g
}

// mintAccessToken signs an access token for a grant.
func (s *Server) mintAccessToken(sub, clientID, grantID string, scopes []string, authTime time.Time, now time.Time) (string, error) {
	nonce, err := secrets.NewID(s.deps.Rand)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	claims := AccessTokenClaims{
		Issuer:    s.cfg.Issuer,
		Subject:   sub,
		Audience:  jwt.Audience{s.cfg.AccessTokenAudience},
		ClientID:  clientID,
		Scope:     JoinScope(scopes),
		ID:        grantID + "." + nonce,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(s.cfg.AccessTokenTTL)),
	}
	if !authTime.IsZero() {
		claims.AuthTime = jwt.NewNumericDate(authTime)
	}
	tok, err := s.deps.Signer.Sign(s.cfg.SigningAlg, AccessTokenType, claims)
	if err != nil {
		return "", fmt.Errorf("mint access token: %w", err)
	}
	return tok, nil
}

// ValidateAccessToken checks a JWT access token's signature, type, issuer,
// audience and lifetime (RFC 9068 §4). It does not check the grant: callers
// that need revocation to take effect look the grant up.
func (s *Server) ValidateAccessToken(token string) (AccessTokenClaims, *Error) {
	payload, header, err := s.deps.Verifier.Verify(token)
	if err != nil {
		return AccessTokenClaims{}, InvalidToken("the access token is invalid")
	}
	// RFC 9068 §4: reject tokens whose typ is not at+jwt, so an ID token
	// cannot be replayed as an access token.
	typ, _ := header.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, AccessTokenType) && !strings.EqualFold(typ, "application/"+AccessTokenType) {
		return AccessTokenClaims{}, InvalidToken("the token is not an access token")
	}
	var c AccessTokenClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		return AccessTokenClaims{}, InvalidToken("the access token is malformed")
	}
	now := s.deps.Now()
	switch {
	case c.Issuer != s.cfg.Issuer:
		return AccessTokenClaims{}, InvalidToken("the access token was issued by someone else")
	case !c.Audience.Contains(s.cfg.AccessTokenAudience):
		return AccessTokenClaims{}, InvalidToken("the access token is not meant for this resource")
	case c.ExpiresAt == nil || !now.Before(c.ExpiresAt.Time()):
		return AccessTokenClaims{}, InvalidToken("the access token has expired")
	case c.IssuedAt != nil && c.IssuedAt.Time().After(now.Add(maxClockSkew)):
		return AccessTokenClaims{}, InvalidToken("the access token was issued in the future")
	case c.Subject == "" || c.ID == "":
		return AccessTokenClaims{}, InvalidToken("the access token is malformed")
	}
	return c, nil
}
