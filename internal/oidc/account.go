package oidc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/oauth"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
	"github.com/gatehouse-idp/gatehouse/internal/useragent"
)

// The account page lets a person see and end their own login sessions
// and take back the access they gave apps. Everything it shows and
// changes is scoped to the signed-in person: a session id or client id of
// anyone else's is "not found", exactly like one that does not exist.

// accountNotices are the confirmations the page shows after a change
// (?done=...), by the catalog key they map to.
var accountNotices = map[string]string{
	"signed_out":        "account.notice.signed_out",
	"signed_out_others": "account.notice.signed_out_others",
	"revoked":           "account.notice.revoked",
}

// HandleAccountPage shows the account page, or sends a person who is not
// signed in to sign in and come back.
func (p *Provider) HandleAccountPage(w http.ResponseWriter, r *http.Request) {
	cur, ok := p.accountSession(w, r)
	if !ok {
		return
	}
	page, err := p.accountPage(r.Context(), cur)
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	page.CSRFToken = p.deps.CSRF.Token(w, r)
	page.NoticeKey = accountNotices[r.URL.Query().Get("done")]
	loc := ui.Negotiate(r.URL.Query().Get("ui_locales"), r.Header.Get("Accept-Language"))
	p.deps.Renderer.Render(w, http.StatusOK, loc, page)
}

// accountSession returns the request's live session. Without one it
// redirects to the sign-in page (which returns here) and ok is false.
func (p *Provider) accountSession(w http.ResponseWriter, r *http.Request) (*session.Current, bool) {
	cur, err := p.deps.Sessions.Current(r.Context(), r)
	if err != nil {
		p.unavailable(w, r, err)
		return nil, false
	}
	if cur == nil {
		p.redirect(w, r, p.endpoint(PathLogin)+"?"+url.Values{"next": {"account"}}.Encode())
		return nil, false
	}
	return cur, true
}

// accountPage gathers what the page shows: the person's live sessions and
// the apps that hold a live grant or a remembered consent.
func (p *Provider) accountPage(ctx context.Context, cur *session.Current) (ui.AccountPage, error) {
	page := ui.AccountPage{Name: cur.User.Name, Email: cur.User.Email}
	sessions, err := p.deps.Sessions.List(ctx, cur.User.ID)
	if err != nil {
		return page, err
	}
	for _, s := range sessions {
		ua := useragent.Parse(s.UserAgent)
		page.Sessions = append(page.Sessions, ui.AccountSession{
			ID: s.ID, Browser: ua.BrowserLabel(), OS: ua.OS, IP: s.IP,
			Started: s.CreatedAt, LastActive: s.LastSeenAt, Current: s.ID == cur.Session.ID,
		})
	}
	grants, err := p.deps.Store.ListUserGrants(ctx, cur.User.ID)
	if err != nil {
		return page, fmt.Errorf("list grants: %w", err)
	}
	consents, err := p.deps.Store.ListUserConsents(ctx, cur.User.ID)
	if err != nil {
		return page, fmt.Errorf("list consents: %w", err)
	}
	apps := map[string]*ui.AccountApp{}
	var order []string
	add := func(clientID string, scopes []string, at time.Time) {
		a, ok := apps[clientID]
		if !ok {
			a = &ui.AccountApp{ClientID: clientID, Since: at}
			apps[clientID] = a
			order = append(order, clientID)
		}
		a.Scopes = oauth.UnionScopes(a.Scopes, scopes)
		if at.Before(a.Since) {
			a.Since = at
		}
	}
	for _, c := range consents {
		add(c.ClientID, c.Scopes, c.CreatedAt)
	}
	for _, g := range grants {
		add(g.ClientID, g.Scopes, g.CreatedAt)
	}
	slices.Sort(order)
	for _, id := range order {
		a := apps[id]
		client, err := p.deps.Store.GetClient(ctx, id)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			continue // deleted meanwhile, and its grants with it
		case err != nil:
			return page, fmt.Errorf("get client: %w", err)
		}
		a.Name = clientName(client)
		page.Apps = append(page.Apps, *a)
	}
	return page, nil
}

// accountPost checks a form post to the account page: a signed-in person
// and a valid CSRF token. ok is false when a response has been written.
func (p *Provider) accountPost(w http.ResponseWriter, r *http.Request) (*session.Current, url.Values, bool) {
	form, ok := p.postedForm(w, r)
	if !ok {
		return nil, nil, false
	}
	cur, ok := p.accountSession(w, r)
	if !ok {
		return nil, nil, false
	}
	return cur, form, true
}

// HandleAccountEndSession signs one of the person's sessions out. Signing
// out the session of this very browser also clears its cookie.
func (p *Provider) HandleAccountEndSession(w http.ResponseWriter, r *http.Request) {
	cur, form, ok := p.accountPost(w, r)
	if !ok {
		return
	}
	sid := form.Get("sid")
	err := p.deps.Sessions.EndOwn(r.Context(), cur.User.ID, sid)
	if errors.Is(err, storage.ErrNotFound) {
		p.errorPage(w, r, http.StatusNotFound, "error.not_found.title", "error.not_found.message", "")
		return
	}
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	if sid == cur.Session.ID {
		p.deps.Audit.Record(r.Context(), storage.AuditEvent{Type: audit.Logout, Actor: audit.User(cur.User.ID),
			SessionID: sid, UserID: cur.User.ID, Details: map[string]any{"via": "account"}})
		p.deps.Sessions.ClearCookie(w)
		p.redirect(w, r, p.endpoint("/"))
		return
	}
	p.deps.Audit.Record(r.Context(), storage.AuditEvent{Type: audit.SessionRevoked, Actor: audit.User(cur.User.ID),
		SessionID: sid, UserID: cur.User.ID, Details: map[string]any{"by": "user", "by_session": cur.Session.ID}})
	p.redirect(w, r, p.endpoint(PathAccount)+"?done=signed_out")
}

// HandleAccountEndOthers signs out every session of the person but this
// one.
func (p *Provider) HandleAccountEndOthers(w http.ResponseWriter, r *http.Request) {
	cur, _, ok := p.accountPost(w, r)
	if !ok {
		return
	}
	ended, err := p.deps.Sessions.EndOthers(r.Context(), cur.User.ID, cur.Session.ID)
	for _, sid := range ended { // also those ended before a failure
		p.deps.Audit.Record(r.Context(), storage.AuditEvent{Type: audit.SessionRevoked, Actor: audit.User(cur.User.ID),
			SessionID: sid, UserID: cur.User.ID, Details: map[string]any{"by": "user", "by_session": cur.Session.ID}})
	}
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	p.redirect(w, r, p.endpoint(PathAccount)+"?done=signed_out_others")
}

// HandleAccountRevokeApp takes back an app's access: every grant the
// person gave it is revoked (its refresh tokens die, its opaque access
// tokens and introspected JWTs turn inactive) and the consent is
// forgotten, so the app has to ask again.
func (p *Provider) HandleAccountRevokeApp(w http.ResponseWriter, r *http.Request) {
	cur, form, ok := p.accountPost(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	clientID := form.Get("client_id")
	if clientID == "" || len(clientID) > 256 {
		p.errorPage(w, r, http.StatusNotFound, "error.not_found.title", "error.not_found.message", "")
		return
	}
	n, err := p.deps.Store.RevokeUserClientGrants(ctx, cur.User.ID, clientID, p.deps.Now())
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	err = p.deps.Store.DeleteConsent(ctx, cur.User.ID, clientID)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		if n == 0 {
			// Nothing of this person's: as if the client did not exist.
			p.errorPage(w, r, http.StatusNotFound, "error.not_found.title", "error.not_found.message", "")
			return
		}
	case err != nil:
		p.unavailable(w, r, err)
		return
	}
	p.deps.Logger.InfoContext(ctx, "access revoked by its user", slog.String("user_id", cur.User.ID),
		slog.String("client_id", clientID), slog.Int64("grants", n))
	p.deps.Audit.Record(ctx, storage.AuditEvent{Type: audit.ConsentRevoked, Actor: audit.User(cur.User.ID),
		SessionID: cur.Session.ID, UserID: cur.User.ID, ClientID: clientID, Details: map[string]any{"grants_revoked": n}})
	p.redirect(w, r, p.endpoint(PathAccount)+"?done=revoked")
}
