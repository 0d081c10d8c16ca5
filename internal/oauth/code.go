package oauth

import (
	"context"
	"fmt"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Subject is the signed-in person an authorization code is issued for.
type Subject struct {
	UserID    string
	SessionID string
	AuthTime  time.Time
	AMR       []string
}

// IssueCode creates a single-use authorization code for req (RFC 6749
// §4.1.2) bound to the client, the redirect URI and the PKCE challenge.
// Only its hash is stored. The grant it will create is named now so that
// a replay of the code can revoke what the first redemption issued.
func (s *Server) IssueCode(ctx context.Context, req *AuthorizeRequest, sub Subject) (string, error) {
	code, err := secrets.New(s.deps.Rand)
	if err != nil {
		return "", fmt.Errorf("issue code: %w", err)
	}
	grantID, err := secrets.NewID(s.deps.Rand)
	if err != nil {
		return "", fmt.Errorf("issue code: %w", err)
	}
	now := s.deps.Now()
	err = s.deps.Store.CreateAuthCode(ctx, storage.AuthCode{
		CodeHash:            secrets.Hash(code),
		ClientID:            req.ClientID,
		UserID:              sub.UserID,
		SessionID:           sub.SessionID,
		GrantID:             grantID,
		RedirectURI:         req.RedirectURI,
		Scopes:              req.Scopes,
		Nonce:               req.Nonce,
		CodeChallenge:       req.CodeChallenge,
		CodeChallengeMethod: req.CodeChallengeMethod,
		AuthTime:            sub.AuthTime,
		AMR:                 sub.AMR,
		CreatedAt:           now,
		ExpiresAt:           now.Add(s.cfg.CodeTTL),
	})
	if err != nil {
		return "", fmt.Errorf("issue code: %w", err)
	}
	return code, nil
}
