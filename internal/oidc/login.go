package oidc

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"time"

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
	// failedPage is the form again, with an error, for whatever failed.
	failedPage := func(status int, retryAfter time.Duration) {
		loc := ui.Negotiate(ar.UILocales, r.Header.Get("Accept-Language"))
		page := ui.LoginPage{
			CSRFToken:   p.deps.CSRF.Token(w, r),
			AuthRequest: handle,
			Email:       email,
			ErrorKey:    "login.error.invalid",
			RetryAfter:  retryAfter,
		}
		if handle != "" {
			page.ClientName = clientName(client)
			page.RedirectOrigin = redirectOrigin(ar.RedirectURI)
		}
		p.deps.Renderer.Render(w, status, loc, page)
	}
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
			failedPage(http.StatusTooManyRequests, d.RetryAfter)
			return
		}
	}
	user, err := p.deps.Users.Authenticate(ctx, email, password)
	if errors.Is(err, users.ErrInvalidCredentials) {
		// Throttle.Attempt has already counted this as a failure.
		p.deps.Logger.InfoContext(ctx, "sign-in failed", slog.String("client_id", ar.ClientID), slog.String("ip", ip))
		failedPage(http.StatusUnauthorized, 0)
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
		// A failure to clear the count is not a failure to sign in.
		if err := p.deps.Throttle.Success(ctx, email, ip); err != nil {
			p.deps.Logger.WarnContext(ctx, "sign-in throttle", slog.Any("error", err))
		}
	}
	sess, err := p.deps.Sessions.Start(ctx, w, r, user.ID, []string{"pwd"})
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
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

// clientName is what the pages call a client.
func clientName(c storage.Client) string {
	if c.Metadata.ClientName != "" {
		return c.Metadata.ClientName
	}
	return c.ID
}
