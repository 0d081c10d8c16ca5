package oidc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

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
	page := ui.LoginPage{CSRFToken: p.deps.CSRF.Token(w, r), Next: loginNext(r.URL.Query().Get("next"))}
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
// does not tell which addresses have accounts. So do throttled attempts:
// too many failures for an email, or from an address, get 429 with
// Retry-After whether or not the email has an account.
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
	ip := session.ClientIP(r)
	if p.deps.Throttle != nil {
		// Before the password is even looked at: a locked account is not
		// verified at all, so the answer and its (short) time are the
		// same whether the password is right or wrong, and whether the
		// account exists or not (the key is the email either way).
		d, err := p.deps.Throttle.Attempt(ctx, email, ip)
		if err != nil {
			p.unavailable(w, r, err)
			return
		}
		if !d.Allowed {
			// RFC 6585 §4: 429 Too Many Requests, with RFC 9110 §10.2.3
			// Retry-After in seconds.
			w.Header().Set("Retry-After", strconv.Itoa(int(d.RetryAfter/time.Second)))
			// The account is not looked up (see above), so the event
			// names no user; the IP shows whose attempts these are.
			p.deps.Audit.Record(ctx, storage.AuditEvent{Type: audit.LoginFailed, ClientID: ar.ClientID,
				Details: map[string]any{"reason": audit.ReasonThrottled, "retry_after": int(d.RetryAfter / time.Second)}})
			p.loginAgain(w, r, ar, client, handle, http.StatusTooManyRequests, "login.error.invalid", d.RetryAfter)
			return
		}
	}
	user, err := p.deps.Users.Authenticate(ctx, email, password)
	if errors.Is(err, users.ErrInvalidCredentials) {
		// Throttle.Attempt has already counted this as a failure.
		p.deps.Logger.InfoContext(ctx, "sign-in failed", slog.String("client_id", ar.ClientID), slog.String("ip", ip))
		p.recordLoginFailed(ctx, err, ar.ClientID)
		p.loginAgain(w, r, ar, client, handle, http.StatusUnauthorized, "login.error.invalid", 0)
		return
	}
	if err != nil {
		if p.deps.Throttle != nil {
			// The person's attempt was not judged; do not hold it against them.
			if terr := p.deps.Throttle.Abandon(ctx, email, ip); terr != nil {
				p.deps.Logger.WarnContext(ctx, "sign-in throttle", slog.Any("error", terr))
			}
		}
		p.unavailable(w, r, err)
		return
	}
	if p.deps.Throttle != nil {
		// The password was right: whatever the session limit says next,
		// this was not a guess. A failure to clear the count is not a
		// failure to sign in.
		if err := p.deps.Throttle.Success(ctx, email, ip); err != nil {
			p.deps.Logger.WarnContext(ctx, "sign-in throttle", slog.Any("error", err))
		}
	}
	sess, err := p.deps.Sessions.Start(ctx, w, r, user.ID, []string{"pwd"}, p.sessionLimit(client))
	if errors.Is(err, session.ErrLimit) {
		// Nothing was written: the person is told why, can sign out
		// elsewhere (or ask an administrator) and try again.
		p.deps.Audit.Record(ctx, storage.AuditEvent{Type: audit.LoginFailed, UserID: user.ID, ClientID: ar.ClientID,
			Details: map[string]any{"reason": audit.ReasonSessionLimit}})
		p.loginAgain(w, r, ar, client, handle, http.StatusConflict, "login.error.session_limit", 0)
		return
	}
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	p.deps.Audit.Record(ctx, storage.AuditEvent{
		Type: audit.LoginSucceeded, Actor: audit.User(user.ID), UserID: user.ID, SessionID: sess.ID,
		ClientID: ar.ClientID, Time: sess.AuthTime, Details: map[string]any{"amr": "pwd"},
	})
	if handle == "" {
		if loginNext(form.Get("next")) == "account" {
			p.redirect(w, r, p.endpoint(PathAccount))
			return
		}
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

// loginAgain shows the sign-in form again, with the email kept and the
// message errorKey above it (or, when retryAfter is positive, "too many
// attempts, try again in ...").
func (p *Provider) loginAgain(w http.ResponseWriter, r *http.Request, ar storage.AuthRequest, client storage.Client, handle string, status int, errorKey string, retryAfter time.Duration) {
	loc := ui.Negotiate(ar.UILocales, r.Header.Get("Accept-Language"))
	page := ui.LoginPage{
		CSRFToken:   p.deps.CSRF.Token(w, r),
		AuthRequest: handle,
		Email:       r.PostForm.Get("email"),
		ErrorKey:    errorKey,
		RetryAfter:  retryAfter,
		Next:        loginNext(r.PostForm.Get("next")),
	}
	if handle != "" {
		page.ClientName = clientName(client)
		page.RedirectOrigin = redirectOrigin(ar.RedirectURI)
	}
	p.deps.Renderer.Render(w, status, loc, page)
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

// sessionLimit is the concurrent-session policy for a sign-in made for
// client (the zero Client when signing in to the IdP itself): the
// server's, with the client's max_sessions_per_user and
// session_limit_action overriding it where set.
func (p *Provider) sessionLimit(client storage.Client) session.Limit {
	l := p.cfg.SessionLimit
	if n := client.Metadata.MaxSessionsPerUser; n != nil {
		l.Max = *n
	}
	if a := client.Metadata.SessionLimitAction; a != "" {
		l.Action = storage.SessionLimitAction(a)
	}
	return l
}

// loginNext is where a direct sign-in may continue: only "account". A
// fixed list, never a URL, so the sign-in page cannot be made into an
// open redirector.
func loginNext(v string) string {
	if v == "account" {
		return v
	}
	return ""
}
