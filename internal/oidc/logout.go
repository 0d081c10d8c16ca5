package oidc

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
)

// logoutParams are the parameters of OIDC RP-Initiated Logout 1.0 §2 that
// Gatehouse acts on. logout_hint is not used: the session to end is the
// browser's.
var logoutParams = []string{"id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales"}

// maxLogoutState bounds the state echoed to the app, as at the authorize
// endpoint.
const maxLogoutState = 4096

// idTokenHint is what a verified id_token_hint says.
type idTokenHint struct {
	Subject   string
	SessionID string
	ClientID  string
}

// logoutRequest is an RP-initiated logout request, checked.
type logoutRequest struct {
	params url.Values // the logoutParams as received, single-valued
	// hint is the verified id_token_hint; nil when absent or invalid.
	hint *idTokenHint
	// client is the app that asked: the hint's audience, else client_id.
	client *storage.Client
	// redirectTo is where to send the browser afterwards, state appended;
	// "" to show the signed-out page.
	redirectTo string
}

// badLogoutRequest is a logout request that contradicts itself or the
// rules; its message is shown to the person.
type badLogoutRequest struct{ msg string }

func (e *badLogoutRequest) Error() string { return "bad logout request: " + e.msg }

// parseLogoutRequest checks a logout request (OIDC RP-Initiated Logout
// §2, §3, §4). A missing or invalid id_token_hint is not an error: the
// request is then untrusted (the person is asked to confirm) and gets no
// post-logout redirect. Errors are for requests that contradict
// themselves; they are shown on an error page, never redirected.
func (p *Provider) parseLogoutRequest(ctx context.Context, v url.Values) (logoutRequest, error) {
	req := logoutRequest{params: url.Values{}}
	for _, k := range logoutParams {
		if len(v[k]) > 1 {
			return req, &badLogoutRequest{k + " is repeated"}
		}
		if s := v.Get(k); s != "" {
			req.params.Set(k, s)
		}
	}
	if len(req.params.Get("state")) > maxLogoutState {
		return req, &badLogoutRequest{"state is too long"}
	}
	if tok := req.params.Get("id_token_hint"); tok != "" {
		if h, ok := p.verifyIDTokenHint(tok); ok {
			req.hint = &h
		} else {
			p.deps.Logger.InfoContext(ctx, "logout: ignoring an invalid id_token_hint")
		}
	}
	clientID := req.params.Get("client_id")
	if req.hint != nil {
		// §2: "If both client_id and id_token_hint are present, the OP
		// MUST verify that the Client Identifier matches the one used
		// when issuing the ID Token."
		if clientID != "" && clientID != req.hint.ClientID {
			return req, &badLogoutRequest{"client_id does not match the audience of id_token_hint"}
		}
		clientID = req.hint.ClientID
	}
	if clientID != "" {
		c, err := p.deps.Store.GetClient(ctx, clientID)
		switch {
		case err == nil:
			req.client = &c
		case errors.Is(err, storage.ErrNotFound):
			// An unknown client cannot be redirected to, and a hint for a
			// deleted client proves nothing about the browser.
			req.hint = nil
		default:
			return req, fmt.Errorf("logout: get client: %w", err)
		}
	}
	// §3: redirect only to a registered post_logout_redirect_uri, matched
	// exactly, and (as the final spec requires when nothing else vouches
	// for the target) only with a valid id_token_hint identifying the
	// client, so that no other site can bounce the browser through here.
	if uri := req.params.Get("post_logout_redirect_uri"); uri != "" && req.hint != nil && req.client != nil &&
		slices.Contains(req.client.Metadata.PostLogoutRedirectURIs, uri) {
		req.redirectTo = withState(uri, req.params.Get("state"))
	}
	return req, nil
}

// withState appends state to a registered redirect URI, keeping the URI's
// own query exactly as registered. Registered URIs have no fragment.
func withState(uri, state string) string {
	if state == "" {
		return uri
	}
	sep := "?"
	if strings.Contains(uri, "?") {
		sep = "&"
	}
	return uri + sep + "state=" + url.QueryEscape(state)
}

// verifyIDTokenHint checks an id_token_hint: an ID token this provider
// signed with a published key, for exactly one client. It may have
// expired (§2: the OP need not reject an expired hint; an app's last ID
// token usually has by the time the person signs out).
func (p *Provider) verifyIDTokenHint(tok string) (idTokenHint, bool) {
	payload, header, err := p.deps.Keys.Verify(tok)
	if err != nil {
		return idTokenHint{}, false
	}
	// Only ID tokens (typ JWT): an access token (at+jwt) or a logout
	// token (logout+jwt) is not a hint.
	if typ, _ := header.ExtraHeaders[jose.HeaderType].(string); typ != "JWT" {
		return idTokenHint{}, false
	}
	var c struct {
		Issuer    string       `json:"iss"`
		Subject   string       `json:"sub"`
		Audience  jwt.Audience `json:"aud"`
		SessionID string       `json:"sid"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return idTokenHint{}, false
	}
	if c.Issuer != p.cfg.Issuer || c.Subject == "" || len(c.Audience) != 1 || c.Audience[0] == "" {
		return idTokenHint{}, false
	}
	return idTokenHint{Subject: c.Subject, SessionID: c.SessionID, ClientID: c.Audience[0]}, true
}

// HandleLogout is the end_session_endpoint (OIDC RP-Initiated Logout 1.0
// §2), for GET and POST. A request carrying an ID token of the browser's
// current session ends it at once; anything else asks the person first.
func (p *Provider) HandleLogout(w http.ResponseWriter, r *http.Request) {
	v, e := authorizeParams(w, r)
	if e != nil {
		p.errorPage(w, r, http.StatusBadRequest, "error.bad_request.title", "error.bad_request.message", "")
		return
	}
	if r.Method == http.MethodPost {
		// An app's form POST is cross-site, so the browser leaves out the
		// SameSite=Lax session cookie and the session could not be seen.
		// The same request as a GET navigation carries it.
		q := url.Values{}
		for _, k := range logoutParams {
			if vs, ok := v[k]; ok {
				q[k] = vs
			}
		}
		to := p.endpoint(PathLogout)
		if len(q) > 0 {
			to += "?" + q.Encode()
		}
		p.redirect(w, r, to)
		return
	}
	p.logout(w, r, v, false)
}

// HandleLogoutConfirm ends the session after the person confirmed, on the
// logout page or with the home page's "Sign out" button.
func (p *Provider) HandleLogoutConfirm(w http.ResponseWriter, r *http.Request) {
	form, ok := p.postedForm(w, r)
	if !ok {
		return
	}
	p.logout(w, r, form, true)
}

func (p *Provider) logout(w http.ResponseWriter, r *http.Request, v url.Values, confirmed bool) {
	ctx := r.Context()
	req, err := p.parseLogoutRequest(ctx, v)
	var bad *badLogoutRequest
	switch {
	case errors.As(err, &bad):
		p.errorPage(w, r, http.StatusBadRequest, "error.bad_request.title", "error.bad_request.message", "invalid_request: "+bad.msg)
		return
	case err != nil:
		p.unavailable(w, r, err)
		return
	}
	loc := ui.Negotiate(req.params.Get("ui_locales"), r.Header.Get("Accept-Language"))
	cur, err := p.deps.Sessions.Current(ctx, r)
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	// §2 and §6: without proof that the app asking is the one the person
	// is signed in to right now (its ID token for this very session), a
	// logout request could come from any site; ask.
	trusted := confirmed || cur == nil ||
		req.hint != nil && req.hint.SessionID == cur.Session.ID && req.hint.Subject == cur.User.ID
	if !trusted {
		page := ui.LogoutPage{
			CSRFToken:             p.deps.CSRF.Token(w, r),
			UserEmail:             cur.User.Email,
			IDTokenHint:           req.params.Get("id_token_hint"),
			ClientID:              req.params.Get("client_id"),
			PostLogoutRedirectURI: req.params.Get("post_logout_redirect_uri"),
			State:                 req.params.Get("state"),
			UILocales:             req.params.Get("ui_locales"),
		}
		if req.client != nil {
			page.ClientName = clientName(*req.client)
		}
		if req.redirectTo != "" {
			page.RedirectOrigin = redirectOrigin(req.redirectTo)
		}
		p.deps.Renderer.Render(w, http.StatusOK, loc, page)
		return
	}
	sid := ""
	if cur != nil {
		sid = cur.Session.ID
	}
	if err := p.deps.Sessions.End(ctx, w, sid); err != nil && !errors.Is(err, storage.ErrNotFound) {
		p.unavailable(w, r, err)
		return
	}
	if cur != nil {
		e := storage.AuditEvent{Type: audit.Logout, Actor: audit.User(cur.User.ID), SessionID: sid, UserID: cur.User.ID,
			Details: map[string]any{"via": "end_session_endpoint", "confirmed": confirmed}}
		if req.client != nil {
			e.ClientID = req.client.ID
		}
		p.deps.Audit.Record(ctx, e)
	}
	// The browser may have had no session left (it timed out, or the app
	// sent the person here twice): the app still gets them back (OIDC WG,
	// 2022-08-11: a validated post_logout_redirect_uri is always honoured).
	if req.redirectTo != "" {
		p.redirect(w, r, req.redirectTo)
		return
	}
	p.deps.Renderer.Render(w, http.StatusOK, loc, ui.SignedOutPage{})
}
