package oidc

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/oauth"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
)

// maxFormBody bounds form posts to the authorize, login and consent
// endpoints.
const maxFormBody = 64 << 10

// flow is an authorization request on its way to a code: validated, and
// possibly already past sign-in (loginAt) or consent in an earlier step.
type flow struct {
	req    *oauth.AuthorizeRequest
	client storage.Client
	cur    *session.Current
	// loginAt is when the person signed in for this very request; it
	// satisfies prompt=login and max_age.
	loginAt *time.Time
	// consented is set when the person just approved this request on the
	// consent page; it satisfies prompt=consent.
	consented bool
	// handle identifies the stored auth request, once there is one.
	handle string
}

// HandleAuthorize is the authorization endpoint (RFC 6749 §3.1, OIDC Core
// §3.1.2.1), for GET and POST.
func (p *Provider) HandleAuthorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, e := authorizeParams(w, r)
	if e != nil {
		p.authorizeErrorPage(w, r, e, false)
		return
	}
	client, redirectURI, e := oauth.ResolveClient(ctx, p.deps.Store, v)
	if e != nil {
		// RFC 6749 §4.1.2.1: never redirect to an unverified URI.
		p.authorizeErrorPage(w, r, e, true)
		return
	}
	state := v.Get("state")
	if len(v["state"]) > 1 || len(state) > 4096 {
		state = "" // a repeated or oversized state is the error being reported; echo none
	}
	req, e := oauth.ParseAuthorizeRequest(v, client, redirectURI, StandardScopes())
	if e != nil {
		p.redirect(w, r, oauth.ErrorRedirectURL(redirectURI, e, state, p.cfg.Issuer))
		return
	}
	cur, err := p.deps.Sessions.Current(ctx, r)
	if err != nil {
		p.redirect(w, r, oauth.ErrorRedirectURL(redirectURI, oauth.TemporarilyUnavailable(err), state, p.cfg.Issuer))
		p.deps.Logger.ErrorContext(ctx, "authorize: read session", slog.Any("error", err))
		return
	}
	p.proceed(w, r, flow{req: req, client: client, cur: cur})
}

// authorizeParams returns the request's parameters: the query for GET, the
// form body (only) for POST (OIDC Core §3.1.2.1).
func authorizeParams(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	switch r.Method {
	case http.MethodGet:
		return r.URL.Query(), nil
	case http.MethodPost:
		if e := oauth.RequireForm(r); e != nil {
			return nil, e
		}
		return parseForm(w, r)
	default:
		return nil, oauth.InvalidRequest("use GET or POST")
	}
}

// parseForm reads a form body (never the query string) into r.PostForm,
// where the CSRF check looks for its field.
func parseForm(w http.ResponseWriter, r *http.Request) (url.Values, *oauth.Error) {
	form, e := oauth.ParseFormBody(w, r, maxFormBody)
	if e != nil {
		return nil, e
	}
	r.PostForm = form
	return form, nil
}

// postedForm reads a page's form post and checks its CSRF token. ok is
// false when an error page has been written.
func (p *Provider) postedForm(w http.ResponseWriter, r *http.Request) (url.Values, bool) {
	form, e := parseForm(w, r)
	if e != nil {
		p.errorPage(w, r, http.StatusBadRequest, "error.bad_request.title", "error.bad_request.message", "")
		return nil, false
	}
	if !p.deps.CSRF.Verify(r) {
		p.errorPage(w, r, http.StatusForbidden, "error.expired.title", "error.expired.message", "")
		return nil, false
	}
	return form, true
}

// proceed takes a flow to its next step: sign-in, consent, or the code.
func (p *Provider) proceed(w http.ResponseWriter, r *http.Request, f flow) {
	ctx := r.Context()
	now := p.deps.Now()
	fail := func(e *oauth.Error) {
		p.redirect(w, r, oauth.ErrorRedirectURL(f.req.RedirectURI, e, f.req.State, p.cfg.Issuer))
	}

	// toPage stores the request and sends the browser to the sign-in or
	// consent page — unless prompt=none, which must show no page at all
	// (OIDC Core §3.1.2.1) and gets the error instead.
	toPage := func(path string, noPrompt *oauth.Error) {
		if f.req.HasPrompt(oauth.PromptNone) {
			fail(noPrompt)
			return
		}
		handle, err := p.ensureStored(ctx, &f, now)
		if err != nil {
			fail(oauth.TemporarilyUnavailable(err))
			p.deps.Logger.ErrorContext(ctx, "store auth request", slog.Any("error", err))
			return
		}
		p.redirect(w, r, p.endpoint(path)+"?"+url.Values{"ar": {handle}}.Encode())
	}

	if p.needsLogin(f, now) {
		toPage(PathLogin, oauth.LoginRequired("the person is not signed in"))
		return
	}

	needConsent, err := p.needsConsent(ctx, f)
	if err != nil {
		fail(oauth.TemporarilyUnavailable(err))
		p.deps.Logger.ErrorContext(ctx, "read consent", slog.Any("error", err))
		return
	}
	if needConsent {
		toPage(PathConsent, oauth.ConsentRequired("the person has not consented to this client"))
		return
	}

	// The stored request, if any, is consumed atomically: two tabs
	// finishing the same request get one code between them.
	if f.handle != "" {
		if _, err := p.deps.Store.ConsumeAuthRequest(ctx, secrets.Hash(f.handle), now); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				p.errorPage(w, r, http.StatusBadRequest, "error.expired.title", "error.expired.message", "")
				return
			}
			fail(oauth.TemporarilyUnavailable(err))
			return
		}
	}
	code, err := p.deps.OAuth.IssueCode(ctx, f.req, oauth.Subject{
		UserID:    f.cur.User.ID,
		SessionID: f.cur.Session.ID,
		AuthTime:  f.cur.Session.AuthTime,
		AMR:       f.cur.Session.AMR,
	})
	if err != nil {
		p.deps.Logger.ErrorContext(ctx, "issue code", slog.Any("error", err))
		fail(oauth.TemporarilyUnavailable(err))
		return
	}
	p.redirect(w, r, oauth.CodeRedirectURL(f.req.RedirectURI, code, f.req.State, p.cfg.Issuer))
}

// needsLogin decides whether the person must (re-)authenticate.
func (p *Provider) needsLogin(f flow, now time.Time) bool {
	if f.cur == nil {
		return true
	}
	if f.loginAt != nil {
		return false // they just signed in for this request
	}
	if f.req.HasPrompt(oauth.PromptLogin) {
		return true
	}
	// OIDC Core §3.1.2.1 max_age: re-authenticate when the last sign-in is
	// older than max_age seconds (max_age=0 always re-authenticates).
	if f.req.MaxAge != nil && now.Sub(f.cur.Session.AuthTime) >= time.Duration(*f.req.MaxAge)*time.Second {
		return true
	}
	return false
}

// needsConsent decides whether the consent page must be shown.
func (p *Provider) needsConsent(ctx context.Context, f flow) (bool, error) {
	if f.client.Metadata.SkipConsent {
		return false, nil
	}
	if f.consented {
		return false, nil
	}
	if f.req.HasPrompt(oauth.PromptConsent) {
		return true, nil
	}
	c, err := p.deps.Store.GetConsent(ctx, f.cur.User.ID, f.client.ID)
	if errors.Is(err, storage.ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return !oauth.CoversScopes(c.Scopes, f.req.Scopes), nil
}

// ensureStored saves the request so the sign-in and consent pages can
// continue it, and returns its handle. The handle is a 256-bit secret;
// only its hash is stored.
func (p *Provider) ensureStored(ctx context.Context, f *flow, now time.Time) (string, error) {
	if f.handle != "" {
		return f.handle, nil
	}
	handle, err := secrets.New(p.deps.Rand)
	if err != nil {
		return "", err
	}
	ar := storage.AuthRequest{
		IDHash:              secrets.Hash(handle),
		ClientID:            f.client.ID,
		RedirectURI:         f.req.RedirectURI,
		Scopes:              f.req.Scopes,
		State:               f.req.State,
		Nonce:               f.req.Nonce,
		CodeChallenge:       f.req.CodeChallenge,
		CodeChallengeMethod: f.req.CodeChallengeMethod,
		Prompt:              f.req.Prompt,
		MaxAge:              f.req.MaxAge,
		LoginHint:           f.req.LoginHint,
		UILocales:           f.req.UILocales,
		LoginAt:             f.loginAt,
		CreatedAt:           now,
		ExpiresAt:           now.Add(p.cfg.AuthRequestTTL),
	}
	if f.cur != nil {
		ar.SessionID = f.cur.Session.ID
	}
	if err := p.deps.Store.CreateAuthRequest(ctx, ar); err != nil {
		return "", err
	}
	f.handle = handle
	return handle, nil
}

// resume rebuilds a flow from a stored auth request.
func resume(ar storage.AuthRequest, client storage.Client, cur *session.Current, handle string) flow {
	return flow{
		req: &oauth.AuthorizeRequest{
			ClientID:            ar.ClientID,
			RedirectURI:         ar.RedirectURI,
			Scopes:              ar.Scopes,
			State:               ar.State,
			Nonce:               ar.Nonce,
			CodeChallenge:       ar.CodeChallenge,
			CodeChallengeMethod: ar.CodeChallengeMethod,
			Prompt:              ar.Prompt,
			MaxAge:              ar.MaxAge,
			LoginHint:           ar.LoginHint,
			UILocales:           ar.UILocales,
		},
		client:  client,
		cur:     cur,
		loginAt: ar.LoginAt,
		handle:  handle,
	}
}

// loadAuthRequest finds the stored request named by handle and its client.
// ok is false when it has expired, was completed, or its client is gone;
// the error page has then been written.
func (p *Provider) loadAuthRequest(w http.ResponseWriter, r *http.Request, handle string) (storage.AuthRequest, storage.Client, bool) {
	ctx := r.Context()
	if handle == "" || len(handle) > 128 {
		p.errorPage(w, r, http.StatusBadRequest, "error.expired.title", "error.expired.message", "")
		return storage.AuthRequest{}, storage.Client{}, false
	}
	ar, err := p.deps.Store.GetAuthRequest(ctx, secrets.Hash(handle), p.deps.Now())
	if errors.Is(err, storage.ErrNotFound) {
		p.errorPage(w, r, http.StatusBadRequest, "error.expired.title", "error.expired.message", "")
		return storage.AuthRequest{}, storage.Client{}, false
	}
	if err != nil {
		p.unavailable(w, r, err)
		return storage.AuthRequest{}, storage.Client{}, false
	}
	client, err := p.deps.Store.GetClient(ctx, ar.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		p.errorPage(w, r, http.StatusBadRequest, "error.expired.title", "error.expired.message", "")
		return storage.AuthRequest{}, storage.Client{}, false
	}
	if err != nil {
		p.unavailable(w, r, err)
		return storage.AuthRequest{}, storage.Client{}, false
	}
	return ar, client, true
}

// redirect sends the browser on. After a POST the status is 303 so the
// browser follows with GET and never re-posts credentials to the next
// site (RFC 9700 §4.12: 307 would forward the form body).
func (p *Provider) redirect(w http.ResponseWriter, r *http.Request, to string) {
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, to, status)
}

// authorizeErrorPage shows an error the client must not receive by
// redirect: an unknown client or a redirect URI that is not registered
// (ResolveClient), or a request that could not be read at all.
func (p *Provider) authorizeErrorPage(w http.ResponseWriter, r *http.Request, e *oauth.Error, clientProblem bool) {
	if e.Code == "temporarily_unavailable" {
		p.unavailable(w, r, e.Cause)
		return
	}
	title, msg := "error.bad_request.title", "error.bad_request.message"
	if clientProblem {
		title, msg = "error.invalid_client.title", "error.invalid_client.message"
	}
	p.errorPage(w, r, http.StatusBadRequest, title, msg, e.Code+": "+oauth.WireDescription(e.Description))
}

// errorPage renders a page-level error in the person's language.
func (p *Provider) errorPage(w http.ResponseWriter, r *http.Request, status int, titleKey, messageKey, detail string) {
	uiLocales := r.URL.Query().Get("ui_locales")
	if uiLocales == "" && r.PostForm != nil {
		uiLocales = r.PostForm.Get("ui_locales") // POST /authorize
	}
	loc := ui.Negotiate(uiLocales, r.Header.Get("Accept-Language"))
	p.deps.Renderer.Render(w, status, loc, ui.ErrorPage{TitleKey: titleKey, MessageKey: messageKey, Detail: detail})
}

// unavailable answers 503 when a dependency failed; the cause is logged,
// not shown.
func (p *Provider) unavailable(w http.ResponseWriter, r *http.Request, cause error) {
	p.deps.Logger.ErrorContext(r.Context(), "request failed", slog.String("path", r.URL.Path), slog.Any("error", cause))
	p.errorPage(w, r, http.StatusServiceUnavailable, "error.server.title", "error.server.message", "")
}

// redirectOrigin is the scheme://host[:port] of a redirect URI, added to
// the page's CSP form-action: Chrome applies form-action to the redirect
// that follows a form post.
func redirectOrigin(redirectURI string) string {
	u, err := url.Parse(redirectURI)
	if err != nil || u.Scheme == "" {
		return ""
	}
	if u.Host == "" {
		return u.Scheme + ":" // private-use scheme of a native app
	}
	return u.Scheme + "://" + u.Host
}
