package oidc

import (
	"net/http"

	"github.com/gatehouse-idp/gatehouse/internal/ui"
)

// HandleHome is the IdP's own landing page: who is signed in, if anyone.
func (p *Provider) HandleHome(w http.ResponseWriter, r *http.Request) {
	page := ui.HomePage{IssuerURL: p.cfg.Issuer}
	cur, err := p.deps.Sessions.Current(r.Context(), r)
	if err != nil {
		p.unavailable(w, r, err)
		return
	}
	if cur != nil {
		page.SignedIn, page.Name, page.Email = true, cur.User.Name, cur.User.Email
		page.CSRFToken = p.deps.CSRF.Token(w, r)
	}
	loc := ui.Negotiate(r.URL.Query().Get("ui_locales"), r.Header.Get("Accept-Language"))
	p.deps.Renderer.Render(w, http.StatusOK, loc, page)
}
