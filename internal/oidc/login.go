package oidc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// HandleLoginPage shows the sign-in form, for an authorization request
// (?ar=...) or for the IdP itself.
func (p *Provider) HandleLoginPage(w http.ResponseWriter, r *http.Request) {
	page := ui.LoginPage{CSRFToken: p.deps.CSRF.Token(w, r)}
	uiLocales := ""
	if handle := r.URL.Query().Get("ar"); handle != "" {
		ar, client, ok := p.loadAuthRequest(w, r, handle)
		if !ok {
			return
		}
		page.AuthRequest = handle
		page.Email = ar.LoginHint
		page.ClientName = clientName(client)
		page.RedirectOrigin = redirectOrigin(ar.RedirectURI)
		uiLocales = ar.UILocales
	}
	loc := ui.Negotiate(uiLocales, r.Header.Get("Accept-Language"))
	p.deps.Renderer.Render(w, http.StatusOK, loc, page)
}

// HandleLogin checks the submitted credentials, starts a session and
// continues the authorization request.
//
// A wrong password and an unknown email get the same status, the same body
// and (through users.Authenticate's dummy hash) the same time, so the form
// does not tell which addresses have accounts.
func (p *Provider) HandleLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, ok := p.postedForm(w, r); !ok {
		return
	}
	form := r.PostForm
	handle := form.Get("ar")
	var (
		ar     storage.AuthRequest
		client storage.Client
	)
	if handle != "" {
		var ok bool
		if ar, client, ok = p.loadAuthRequest(w, r, handle); !ok {
			return
		}
	}
	email, password := form.Get("email"), form.Get("password")
	user, err := p.deps.Users.Authenticate(ctx, email, password)
	if errors.Is(err, users.ErrInvalidCredentials) {
		p.deps.Logger.InfoContext(ctx, "sign-in failed", slog.String("client_id", ar.ClientID), slog.String("ip", r.RemoteAddr))
		p.recordLoginFailed(ctx, err, ar.ClientID)
		loc := ui.Negotiate(ar.UILocales, r.Header.Get("Accept-Language"))
		page := ui.LoginPage{
			CSRFToken:   p.deps.CSRF.Token(w, r),
			AuthRequest: handle,
			Email:       email,
			ErrorKey:    "login.error.invalid",
		}
		if handle != "" {
			page.ClientName = clientName(client)
			page.RedirectOrigin = redirectOrigin(ar.RedirectURI)
		}
		p.deps.Renderer.Render(w, http.StatusUnauthorized, loc, page)
		return
	}
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	sess, err := p.deps.Sessions.Start(ctx, w, r, user.ID, []string{"pwd"})
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	p.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.LoginSucceeded, Actor: audit.User(user.ID), UserID: user.ID, SessionID: sess.ID,
		ClientID: ar.ClientID, Time: sess.AuthTime, Details: map[string]any{"amr": "pwd"},
	})
	if handle == "" {
		p.redirect(w, r, p.endpoint("/"))
		return
	}
	now := sess.AuthTime
	if err := p.deps.Store.SetAuthRequestLogin(ctx, secrets.Hash(handle), sess.ID, now); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			p.errorPage(w, r, http.StatusBadRequest, "error.expired.title", "error.expired.message", "")
			return
		}
		p.unavailable(w, r, err)
		return
	}
	ar.SessionID, ar.LoginAt = sess.ID, &now
	p.proceed(w, r, resume(ar, client, &session.Current{Session: sess, User: user}, handle))
}

// recordLoginFailed audits a refused sign-in. The email that was typed is
// not recorded, not even hashed (see audit.LoginFailed); the account is,
// when there is one. The actor is left empty: nobody was authenticated.
func (p *Provider) recordLoginFailed(ctx context.Context, err error, clientID string) {
	e := storage.AuditEvent{Type: audit.LoginFailed, ClientID: clientID, Details: map[string]any{}}
	var ce *users.CredentialsError
	if errors.As(err, &ce) {
		e.UserID = ce.UserID
		e.Details["reason"] = ce.Reason
	}
	p.deps.Audit.Record(ctx, e)
}

// clientName is what the pages call a client.
func clientName(c storage.Client) string {
	if c.Metadata.ClientName != "" {
		return c.Metadata.ClientName
	}
	return c.ID
}
