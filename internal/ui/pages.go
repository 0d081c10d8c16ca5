package ui

import (
	"strings"
	"time"
)

// Page is something Render can show: LoginPage, ConsentPage, ErrorPage,
// HomePage, LogoutPage or SignedOutPage. Pages are plain values; a pointer to one works too.
type Page interface {
	// FormActionOrigins lists origins, besides Gatehouse's own, that the
	// page's forms may end up at. Chrome applies the form-action directive
	// to the redirect that follows a form POST, so a form whose handler
	// redirects back to a client must allow the client's origin.
	FormActionOrigins() []string

	// view returns the template to execute and the value it sees as .Page.
	view(loc Locale) (template string, data any)
}

func originList(origin string) []string {
	if origin == "" {
		return nil
	}
	return []string{origin}
}

// LoginPage is the sign-in form. It posts email, password, csrf_token and
// ar to /login.
type LoginPage struct {
	// CSRFToken is the value of CSRF.Token for this request.
	CSRFToken string
	// AuthRequest identifies the pending authorization request, echoed in
	// the hidden field "ar". Empty when signing in directly.
	AuthRequest string
	// Email prefills the email field (from login_hint, or the previous try).
	Email string
	// ErrorKey is the catalog key of a message to show above the form,
	// such as "login.error.invalid". Empty for none.
	ErrorKey string
	// ClientName, when set, adds "to continue to {ClientName}".
	ClientName string
	// RedirectOrigin is the client's redirect URI origin, allowed as a
	// form-action so the redirect after a successful sign-in is not blocked.
	RedirectOrigin string
	// Next names the IdP page to return to after signing in directly
	// (hidden field "next"); only "account" is honoured. Empty for the
	// home page.
	Next string
	// RetryAfter, when positive, replaces ErrorKey's message with "Too
	// many sign-in attempts. Try again in N seconds/minutes."
	RetryAfter time.Duration
}

// FormActionOrigins returns RedirectOrigin when set.
func (p LoginPage) FormActionOrigins() []string { return originList(p.RedirectOrigin) }

type loginView struct {
	LoginPage
	Error string // the message above the form; empty for none
}

func (p LoginPage) view(loc Locale) (string, any) {
	v := loginView{LoginPage: p}
	switch {
	case p.RetryAfter > 0:
		key, args := throttledMessage(p.RetryAfter)
		v.Error = loc.T(key, args...)
	case p.ErrorKey != "":
		v.Error = loc.T(p.ErrorKey)
	}
	return "login", v
}

// throttledMessage is the catalog key and arguments that ask a person to
// wait d: seconds under a minute, else whole minutes, rounded up so that
// trying again when told is never too early.
func throttledMessage(d time.Duration) (string, []any) {
	if d < time.Minute {
		s := int((d + time.Second - 1) / time.Second)
		if s <= 1 {
			return "login.error.throttled.second", nil
		}
		return "login.error.throttled.seconds", []any{s}
	}
	m := int((d + time.Minute - 1) / time.Minute)
	if m == 1 {
		return "login.error.throttled.minute", nil
	}
	return "login.error.throttled.minutes", []any{m}
}

// ConsentPage asks the signed-in user whether a client may have the
// requested scopes. It posts csrf_token, ar and decision=allow|deny to
// /consent.
type ConsentPage struct {
	CSRFToken   string
	AuthRequest string // hidden field "ar"
	ClientName  string
	ClientURI   string // the client's home page, linked when set
	UserEmail   string // who is signing in, shown when set
	// Scopes are shown in order, each with its catalog description
	// ("scope.<name>"); scopes without one are shown by name.
	Scopes []string
	// RedirectOrigin: see LoginPage.RedirectOrigin.
	RedirectOrigin string
}

// FormActionOrigins returns RedirectOrigin when set.
func (p ConsentPage) FormActionOrigins() []string { return originList(p.RedirectOrigin) }

type scopeItem struct {
	Name        string
	Description string // empty when the catalog has none
}

type consentView struct {
	ConsentPage
	ScopeItems []scopeItem
}

func (p ConsentPage) view(loc Locale) (string, any) {
	v := consentView{ConsentPage: p}
	seen := make(map[string]bool, len(p.Scopes))
	for _, s := range p.Scopes {
		if s == "" || seen[s] {
			continue
		}
		seen[s] = true
		desc, _ := loc.lookup("scope." + s)
		v.ScopeItems = append(v.ScopeItems, scopeItem{Name: s, Description: desc})
	}
	return "consent", v
}

// ErrorPage explains why a browser request failed, for errors that cannot
// be sent back to the client (an unknown client or redirect URI, a stale
// form). The catalog has pairs error.<kind>.title / error.<kind>.message
// for bad_request, invalid_client, expired, access_denied, not_found and
// server.
type ErrorPage struct {
	TitleKey   string // catalog key of the heading; default "error.title"
	MessageKey string // catalog key of the explanation; default "error.message"
	// Detail is technical detail shown verbatim (escaped) under the
	// message, e.g. "invalid_request: redirect_uri is not registered for
	// this client". Never put secrets or internal errors here.
	Detail string
}

// FormActionOrigins returns nil: the error page has no form.
func (p ErrorPage) FormActionOrigins() []string { return nil }

func (p ErrorPage) view(Locale) (string, any) {
	if p.TitleKey == "" {
		p.TitleKey = "error.title"
	}
	if p.MessageKey == "" {
		p.MessageKey = "error.message"
	}
	return "error", p
}

// HomePage is the landing page at /.
type HomePage struct {
	SignedIn  bool
	Name      string // display name; may be empty
	Email     string
	IssuerURL string // shown with a link to its discovery document when set
	// CSRFToken protects the "Sign out" form shown when SignedIn; it
	// posts csrf_token to /logout/confirm.
	CSRFToken string
}

// FormActionOrigins returns nil: the home page has no form.
func (p HomePage) FormActionOrigins() []string { return nil }

type homeView struct {
	HomePage
	DiscoveryURL string
}

func (p HomePage) view(Locale) (string, any) {
	v := homeView{HomePage: p}
	if p.IssuerURL != "" {
		// OIDC Discovery §4: the issuer with /.well-known/openid-configuration appended.
		v.DiscoveryURL = strings.TrimSuffix(p.IssuerURL, "/") + "/.well-known/openid-configuration"
	}
	return "home", v
}

// AccountPage is the signed-in person's own page at /account: their live
// login sessions and the apps they have authorized. Its forms post
// csrf_token and sid to /account/sessions/end, csrf_token to
// /account/sessions/end-others, and csrf_token and client_id to
// /account/apps/revoke.
type AccountPage struct {
	CSRFToken string
	Name      string // display name; may be empty
	Email     string
	// NoticeKey is the catalog key of a confirmation shown at the top
	// ("account.notice.signed_out", ...); empty for none.
	NoticeKey string
	Sessions  []AccountSession
	Apps      []AccountApp
}

// AccountSession is one login session as the account page shows it.
type AccountSession struct {
	ID         string // the sid the sign-out form posts
	Browser    string // e.g. "Firefox 128"; empty when not recognised
	OS         string // e.g. "Windows"; may be empty
	IP         string
	Started    time.Time
	LastActive time.Time
	Current    bool // the session of the browser looking at the page
}

// AccountApp is a client the person has authorized.
type AccountApp struct {
	ClientID string
	Name     string
	Scopes   []string // shown with their catalog descriptions, as on the consent page
	Since    time.Time
}

// FormActionOrigins returns nil: every form posts to Gatehouse itself.
func (p AccountPage) FormActionOrigins() []string { return nil }

type accountView struct {
	AccountPage
	SessionItems []accountSessionItem
	AppItems     []accountAppItem
	HasOthers    bool
}

type accountSessionItem struct {
	AccountSession
	Started, LastActive string
}

type accountAppItem struct {
	AccountApp
	ScopeItems []scopeItem
	Since      string
}

// timeLayout shows times the same way in every language, in UTC: the
// server does not know the person's time zone (there are no scripts to
// ask the browser).
const timeLayout = "2006-01-02 15:04 UTC"

func (p AccountPage) view(loc Locale) (string, any) {
	v := accountView{AccountPage: p}
	for _, s := range p.Sessions {
		v.SessionItems = append(v.SessionItems, accountSessionItem{
			AccountSession: s,
			Started:        s.Started.UTC().Format(timeLayout),
			LastActive:     s.LastActive.UTC().Format(timeLayout),
		})
		if !s.Current {
			v.HasOthers = true
		}
	}
	for _, a := range p.Apps {
		item := accountAppItem{AccountApp: a, Since: a.Since.UTC().Format(timeLayout)}
		for _, s := range a.Scopes {
			desc, _ := loc.lookup("scope." + s)
			item.ScopeItems = append(item.ScopeItems, scopeItem{Name: s, Description: desc})
		}
		v.AppItems = append(v.AppItems, item)
	}
	return "account", v
}

// LogoutPage asks the person to confirm signing out of Gatehouse, when the
// logout request cannot be trusted to come from their app (OIDC
// RP-Initiated Logout §2: the OP SHOULD ask). It posts csrf_token and the
// request's parameters (repeated in hidden fields) to /logout/confirm.
type LogoutPage struct {
	CSRFToken string
	// ClientName names the app that asked, when it is known.
	ClientName string
	// UserEmail is who is signed in, shown when set.
	UserEmail string
	// The logout request's parameters, echoed so the confirmation is
	// checked again as a whole.
	IDTokenHint           string
	ClientID              string
	PostLogoutRedirectURI string
	State                 string
	UILocales             string
	// RedirectOrigin: see LoginPage.RedirectOrigin.
	RedirectOrigin string
}

// FormActionOrigins returns RedirectOrigin when set.
func (p LogoutPage) FormActionOrigins() []string { return originList(p.RedirectOrigin) }

func (p LogoutPage) view(Locale) (string, any) { return "logout", p }

// SignedOutPage says the person is signed out, when there is nowhere to
// send them back to.
type SignedOutPage struct{}

// FormActionOrigins returns nil: the page has no form.
func (p SignedOutPage) FormActionOrigins() []string { return nil }

func (p SignedOutPage) view(Locale) (string, any) { return "signed_out", p }
