package oidc

import (
	"errors"
	"net/http"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/oauth"
	"github.com/gatehouse-idp/gatehouse/internal/secrets"
	"github.com/gatehouse-idp/gatehouse/internal/session"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/ui"
)

// consentContext loads what both consent handlers need: the stored
// request, its client and the person's live session, which must be the
// session the request was started or signed in with. ok is false when a
// response has been written.
func (p *Provider) consentContext(w http.ResponseWriter, r *http.Request, handle string) (storage.AuthRequest, storage.Client, *session.Current, bool) {
	ar, client, ok := p.loadAuthRequest(w, r, handle)
	if !ok {
		return ar, client, nil, false
	}
	cur, err := p.deps.Sessions.Current(r.Context(), r)
	if err != nil {
		p.unavailable(w, r, err)
		return ar, client, nil, false
	}
	if cur == nil {
		// The session ended or timed out while the page was open: sign in
		// again, then come back.
		p.redirect(w, r, p.endpoint(PathLogin)+"?ar="+handle)
		return ar, client, nil, false
	}
	if cur.Session.ID != ar.SessionID {
		// Someone else signed in in this browser meanwhile; consent must
		// come from the person the request was signed in for.
		p.errorPage(w, r, http.StatusBadRequest, "error.session_changed.title", "error.session_changed.message", "")
		return ar, client, nil, false
	}
	return ar, client, cur, true
}

// HandleConsentPage shows the consent form.
func (p *Provider) HandleConsentPage(w http.ResponseWriter, r *http.Request) {
	handle := r.URL.Query().Get("ar")
	ar, client, cur, ok := p.consentContext(w, r, handle)
	if !ok {
		return
	}
	loc := ui.Negotiate(ar.UILocales, r.Header.Get("Accept-Language"))
	p.deps.Renderer.Render(w, http.StatusOK, loc, ui.ConsentPage{
		CSRFToken:      p.deps.CSRF.Token(w, r),
		AuthRequest:    handle,
		ClientName:     clientName(client),
		ClientURI:      client.Metadata.ClientURI,
		UserEmail:      cur.User.Email,
		Scopes:         ar.Scopes,
		RedirectOrigin: redirectOrigin(ar.RedirectURI),
	})
}

// HandleConsent records the person's decision and finishes the request.
func (p *Provider) HandleConsent(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	if _, ok := p.postedForm(w, r); !ok {
		return
	}
	handle := r.PostForm.Get("ar")
	ar, client, cur, ok := p.consentContext(w, r, handle)
	if !ok {
		return
	}
	now := p.deps.Now()
	switch r.PostForm.Get("decision") {
	case "deny":
		if _, err := p.deps.Store.ConsumeAuthRequest(ctx, secrets.Hash(handle), now); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				p.errorPage(w, r, http.StatusBadRequest, "error.expired.title", "error.expired.message", "")
				return
			}
			p.unavailable(w, r, err)
			return
		}
		p.redirect(w, r, oauth.ErrorRedirectURL(ar.RedirectURI, oauth.AccessDenied("the person denied the request"), ar.State, p.cfg.Issuer))
	case "allow":
		scopes := ar.Scopes
		prev, err := p.deps.Store.GetConsent(ctx, cur.User.ID, client.ID)
		switch {
		case err == nil:
			scopes = oauth.UnionScopes(prev.Scopes, ar.Scopes)
		case !errors.Is(err, storage.ErrNotFound):
			p.unavailable(w, r, err)
			return
		}
		if err := p.deps.Store.PutConsent(ctx, storage.Consent{
			UserID: cur.User.ID, ClientID: client.ID, Scopes: scopes, CreatedAt: now, UpdatedAt: now,
		}); err != nil {
			p.unavailable(w, r, err)
			return
		}
		p.deps.Audit.Record(ctx, storage.AuditEvent{
			Type: audit.ConsentGranted, Actor: audit.User(cur.User.ID), Time: now,
			UserID: cur.User.ID, ClientID: client.ID, SessionID: cur.Session.ID,
			// scope: what this request asked for; consented: everything
			// the person has now granted the client.
			Details: map[string]any{"scope": oauth.JoinScope(ar.Scopes), "consented": oauth.JoinScope(scopes)},
		})
		f := resume(ar, client, cur, handle)
		f.consented = true
		p.proceed(w, r, f)
	default:
		p.errorPage(w, r, http.StatusBadRequest, "error.bad_request.title", "error.bad_request.message", "")
	}
}
