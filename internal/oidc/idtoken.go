package oidc

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"fmt"
	"hash"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/oauth"
)

// IDTokens mints ID tokens (OIDC Core §2). It implements
// oauth.IDTokenMinter.
type IDTokens struct {
	issuer string
	ttl    time.Duration
	alg    string
	signer oauth.Signer
	now    func() time.Time
}

// NewIDTokens returns a minter; cfg's defaults are applied.
func NewIDTokens(cfg Config, signer oauth.Signer, now func() time.Time) *IDTokens {
	cfg = cfg.withDefaults()
	if now == nil {
		now = time.Now
	}
	return &IDTokens{issuer: cfg.Issuer, ttl: cfg.IDTokenTTL, alg: cfg.IDTokenAlg, signer: signer, now: now}
}

var _ oauth.IDTokenMinter = (*IDTokens)(nil)

// IDTokenClaims are the claims of a Gatehouse ID token.
type IDTokenClaims struct {
	Issuer        string           `json:"iss"`
	Subject       string           `json:"sub"`
	Audience      jwt.Audience     `json:"aud"`
	ExpiresAt     *jwt.NumericDate `json:"exp"`
	IssuedAt      *jwt.NumericDate `json:"iat"`
	AuthTime      *jwt.NumericDate `json:"auth_time,omitempty"`
	Nonce         string           `json:"nonce,omitempty"`
	AccessHash    string           `json:"at_hash,omitempty"`
	SessionID     string           `json:"sid,omitempty"`
	AMR           []string         `json:"amr,omitempty"`
	Name          string           `json:"name,omitempty"`
	Email         string           `json:"email,omitempty"`
	EmailVerified *bool            `json:"email_verified,omitempty"`
}

// MintIDToken signs an ID token for the token response.
func (t *IDTokens) MintIDToken(_ context.Context, r oauth.IDTokenRequest) (string, error) {
	now := t.now()
	// RFC 7591 §2 / OIDC Registration §2: the client may have registered
	// the algorithm its ID tokens are signed with.
	alg := t.alg
	if a := r.Client.Metadata.IDTokenSignedResponseAlg; a != "" {
		alg = a
	}
	c := IDTokenClaims{
		Issuer:    t.issuer,
		Subject:   r.User.ID,
		Audience:  jwt.Audience{r.Client.ID},
		ExpiresAt: jwt.NewNumericDate(now.Add(t.ttl)),
		IssuedAt:  jwt.NewNumericDate(now),
		Nonce:     r.Nonce,
		SessionID: r.SessionID,
		AMR:       r.AMR,
	}
	// auth_time is always sent: OIDC Core §2 requires it when max_age was
	// requested, and relying parties that enforce freshness need it anyway.
	if !r.AuthTime.IsZero() {
		c.AuthTime = jwt.NewNumericDate(r.AuthTime)
	}
	if r.AccessToken != "" {
		h, err := accessTokenHash(alg, r.AccessToken)
		if err != nil {
			return "", err
		}
		c.AccessHash = h
	}
	addProfileClaims(&c.Name, &c.Email, &c.EmailVerified, r.User, r.Scopes)
	tok, err := t.signer.Sign(alg, "JWT", c)
	if err != nil {
		return "", fmt.Errorf("mint ID token: %w", err)
	}
	return tok, nil
}

// accessTokenHash is at_hash (OIDC Core §3.1.3.6): the left half of the
// hash of the access token, with the hash that matches the ID token's alg.
func accessTokenHash(alg, accessToken string) (string, error) {
	var h hash.Hash
	switch alg {
	case "RS256", "ES256", "PS256":
		h = sha256.New()
	case "EdDSA":
		// Ed25519 signs with SHA-512 (OIDC Core errata set 2).
		h = sha512.New()
	default:
		return "", fmt.Errorf("at_hash: unsupported alg %q", alg)
	}
	h.Write([]byte(accessToken))
	sum := h.Sum(nil)
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2]), nil
}
