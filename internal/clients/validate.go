package clients

import (
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Grant types (RFC 7591 §2 grant_types values).
const (
	GrantAuthorizationCode = "authorization_code"
	GrantRefreshToken      = "refresh_token"
	GrantClientCredentials = "client_credentials"
)

// ResponseTypeCode is the only response type Gatehouse supports.
const ResponseTypeCode = "code"

// Token endpoint authentication methods (RFC 7591 §2).
const (
	AuthMethodClientSecretBasic = "client_secret_basic"
	AuthMethodClientSecretPost  = "client_secret_post"
	AuthMethodNone              = "none" // public client: no secret
)

// Application types (OpenID Connect Dynamic Client Registration 1.0 §2).
const (
	ApplicationTypeWeb    = "web"
	ApplicationTypeNative = "native"
)

// Scopes Gatehouse knows.
const (
	ScopeOpenID        = "openid"
	ScopeProfile       = "profile"
	ScopeEmail         = "email"
	ScopeOfflineAccess = "offline_access"
)

// SupportedGrantTypes returns the grant types a client may register, in a
// new slice each call.
func SupportedGrantTypes() []string {
	return []string{GrantAuthorizationCode, GrantRefreshToken, GrantClientCredentials}
}

// SupportedIDTokenAlgs are the algorithms a client may register for its
// ID tokens.
func SupportedIDTokenAlgs() []string { return []string{"RS256", "ES256", "EdDSA"} }

// SupportedResponseTypes returns the response types a client may register.
func SupportedResponseTypes() []string { return []string{ResponseTypeCode} }

// SupportedAuthMethods returns the token endpoint authentication methods a
// client may register.
func SupportedAuthMethods() []string {
	return []string{AuthMethodClientSecretBasic, AuthMethodClientSecretPost, AuthMethodNone}
}

// StandardScopes returns the OpenID Connect scopes Gatehouse knows, in a new
// slice each call. A client with the authorization_code grant that
// registers no scope gets all of them. Clients may also register scopes of
// their own (API scopes such as invoices:read).
func StandardScopes() []string {
	return []string{ScopeOpenID, ScopeProfile, ScopeEmail, ScopeOfflineAccess}
}

// Access token formats (access_token_format, Gatehouse's metadata field).
const (
	AccessTokenFormatJWT    = "jwt"    // RFC 9068, verified locally by resource servers
	AccessTokenFormatOpaque = "opaque" // a reference, meaningful only through introspection
)

// Limits on metadata values.
const (
	MaxURILen        = 2000
	MaxClientNameLen = 200 // characters
	MaxContacts      = 10
	MaxContactLen    = 254
	MaxRedirectURIs  = 100
	// MaxScopes is the most scope-tokens a client may register, and
	// MaxScopeLen the longest one, in bytes.
	MaxScopes   = 50
	MaxScopeLen = 128
	// MaxAllowedResources is the most resource indicators a client may
	// register.
	MaxAllowedResources = 20
	// MaxRefreshTokenLifetime bounds the refresh token lifetimes a client
	// may register, in seconds: ten years of 365 days.
	MaxRefreshTokenLifetime = 10 * 365 * 24 * 60 * 60
	// MaxSessionsPerUser bounds max_sessions_per_user.
	MaxSessionsPerUser = 1000
)

// IsConfidential reports whether a client with this metadata authenticates
// at the token endpoint with a secret.
func IsConfidential(md storage.ClientMetadata) bool {
	return md.TokenEndpointAuthMethod != AuthMethodNone
}

// Validate checks md against RFC 7591 and Gatehouse's rules and returns it
// with defaults applied and duplicates removed. Errors are
// *RegistrationError. Register calls it; it is exported so that callers can
// check metadata without storing a client.
func Validate(md storage.ClientMetadata) (storage.ClientMetadata, error) {
	var err error

	// RFC 7591 §2: application_type is OIDC Registration §2's: "web" (the
	// default) or "native".
	if md.ApplicationType == "" {
		md.ApplicationType = ApplicationTypeWeb
	}
	if md.ApplicationType != ApplicationTypeWeb && md.ApplicationType != ApplicationTypeNative {
		return md, invalidMetadata("application_type %q is not supported (want %q or %q)",
			md.ApplicationType, ApplicationTypeWeb, ApplicationTypeNative)
	}

	// RFC 7591 §2: "If omitted, the default behavior is that the client
	// will use only the authorization_code Grant Type."
	if md.GrantTypes, err = cleanList("grant_types", md.GrantTypes, SupportedGrantTypes()); err != nil {
		return md, err
	}
	if len(md.GrantTypes) == 0 {
		md.GrantTypes = []string{GrantAuthorizationCode}
	}
	hasCode := slices.Contains(md.GrantTypes, GrantAuthorizationCode)
	// RFC 6749 §6 and §4.4.3: a refresh token is issued under an
	// authorization code grant; a client credentials client asks again
	// instead of refreshing. refresh_token without authorization_code can
	// never be used.
	if slices.Contains(md.GrantTypes, GrantRefreshToken) && !hasCode {
		return md, invalidMetadata("grant_types %q: %q requires %q",
			md.GrantTypes, GrantRefreshToken, GrantAuthorizationCode)
	}

	// RFC 7591 §2: response_types defaults to "code". RFC 7591 §2.1: the
	// server MUST ensure grant_types and response_types are consistent:
	// "code" if and only if "authorization_code". So a client without the
	// authorization_code grant gets no default response type.
	if md.ResponseTypes, err = cleanList("response_types", md.ResponseTypes, SupportedResponseTypes()); err != nil {
		return md, err
	}
	if len(md.ResponseTypes) == 0 && hasCode {
		md.ResponseTypes = []string{ResponseTypeCode}
	}
	if hasCode != slices.Contains(md.ResponseTypes, ResponseTypeCode) {
		return md, invalidMetadata("grant_types %q and response_types %q are inconsistent: "+
			"response type %q goes with grant type %q, and only together (RFC 7591 §2.1)",
			md.GrantTypes, md.ResponseTypes, ResponseTypeCode, GrantAuthorizationCode)
	}

	// RFC 7591 §2: token_endpoint_auth_method defaults to
	// client_secret_basic. Native apps are the exception: RFC 8252 §8.5
	// says a secret shipped inside an app is no secret, so they default to
	// public (none), which makes PKCE mandatory for them.
	if md.TokenEndpointAuthMethod == "" {
		md.TokenEndpointAuthMethod = AuthMethodClientSecretBasic
		if md.ApplicationType == ApplicationTypeNative {
			md.TokenEndpointAuthMethod = AuthMethodNone
		}
	}
	if !slices.Contains(SupportedAuthMethods(), md.TokenEndpointAuthMethod) {
		return md, invalidMetadata("token_endpoint_auth_method %q is not supported (want one of %q)",
			md.TokenEndpointAuthMethod, SupportedAuthMethods())
	}
	// RFC 6749 §4.4: "The client credentials grant type MUST only be used
	// by confidential clients."
	if md.TokenEndpointAuthMethod == AuthMethodNone && slices.Contains(md.GrantTypes, GrantClientCredentials) {
		return md, invalidMetadata("grant type %q needs a confidential client, but token_endpoint_auth_method is %q",
			GrantClientCredentials, AuthMethodNone)
	}

	// RFC 6749 §3.1.2.2: the authorization server MUST require clients of
	// the authorization code flow to register their redirection URIs.
	if md.RedirectURIs, err = cleanURIs("redirect_uris", md.RedirectURIs, md.ApplicationType); err != nil {
		return md, err
	}
	if hasCode && len(md.RedirectURIs) == 0 {
		return md, invalidRedirectURI("redirect_uris is required when grant_types includes %q", GrantAuthorizationCode)
	}
	// OIDC RP-Initiated Logout 1.0 §3.1: post_logout_redirect_uris are
	// redirection targets too and follow the same rules.
	if md.PostLogoutRedirectURIs, err = cleanURIs("post_logout_redirect_uris", md.PostLogoutRedirectURIs, md.ApplicationType); err != nil {
		var re *RegistrationError
		if errors.As(err, &re) {
			re.Code = CodeInvalidClientMetadata // invalid_redirect_uri is about redirect_uris
		}
		return md, err
	}

	// RFC 7591 §2: scope is a space-separated list of RFC 6749 §3.3
	// scope-tokens the client may request: the standard OpenID Connect
	// ones and any of its own (API scopes). A client that signs people in
	// gets the standard ones by default; a machine client gets none, since
	// openid, profile, email and offline_access need a person.
	if md.Scope, err = cleanScope(md.Scope); err != nil {
		return md, err
	}
	if md.Scope == "" && hasCode {
		md.Scope = strings.Join(StandardScopes(), " ")
	}

	// access_token_format is Gatehouse's: "jwt" (RFC 9068, the default) or
	// "opaque" (a reference token, checked by introspection, RFC 7662).
	if md.AccessTokenFormat == "" {
		md.AccessTokenFormat = AccessTokenFormatJWT
	}
	if md.AccessTokenFormat != AccessTokenFormatJWT && md.AccessTokenFormat != AccessTokenFormatOpaque {
		return md, invalidMetadata("access_token_format %q is not supported (want %q or %q)",
			truncate(md.AccessTokenFormat), AccessTokenFormatJWT, AccessTokenFormatOpaque)
	}

	// OIDC Registration §2: id_token_signed_response_alg, default RS256.
	// "none" is refused: Gatehouse never issues unsigned ID tokens. The
	// server must also have keys for the algorithm (--signing-algs);
	// the ones it has are in discovery.
	if a := md.IDTokenSignedResponseAlg; a != "" && !slices.Contains(SupportedIDTokenAlgs(), a) {
		return md, invalidMetadata("id_token_signed_response_alg %q is not supported (want one of %q)",
			truncate(a), SupportedIDTokenAlgs())
	}

	// Refresh token lifetimes override the server's for this client; 0
	// means the server default. They mean something only with the
	// refresh_token grant, but registering them without it does no harm,
	// and a client may add the grant later.
	for _, f := range []struct {
		name string
		val  int64
	}{
		{"refresh_token_idle_lifetime", md.RefreshTokenIdleLifetime},
		{"refresh_token_absolute_lifetime", md.RefreshTokenAbsoluteLifetime},
	} {
		switch {
		case f.val < 0:
			return md, invalidMetadata("%s is %d; it must be 0 (the server default) or a positive number of seconds", f.name, f.val)
		case f.val > MaxRefreshTokenLifetime:
			return md, invalidMetadata("%s is %d seconds; at most %d (10 years) is allowed", f.name, f.val, MaxRefreshTokenLifetime)
		}
	}
	// A refresh token family ends at its absolute expiry whatever its idle
	// lifetime says: a longer idle lifetime would be a lie.
	if idle, abs := md.RefreshTokenIdleLifetime, md.RefreshTokenAbsoluteLifetime; idle > 0 && abs > 0 && idle > abs {
		return md, invalidMetadata("refresh_token_idle_lifetime (%d) is longer than refresh_token_absolute_lifetime (%d)", idle, abs)
	}

	// max_sessions_per_user and session_limit_action are Gatehouse's: they
	// override the server's concurrent-session policy when a person signs
	// in for this client.
	if n := md.MaxSessionsPerUser; n != nil && (*n < 0 || *n > MaxSessionsPerUser) {
		return md, invalidMetadata("max_sessions_per_user is %d; it must be 0 (unlimited) to %d", *n, MaxSessionsPerUser)
	}
	switch storage.SessionLimitAction(md.SessionLimitAction) {
	case "", storage.SessionLimitEvictOldest, storage.SessionLimitRefuse:
	default:
		return md, invalidMetadata("session_limit_action %q is not supported (want %q or %q)",
			truncate(md.SessionLimitAction), storage.SessionLimitEvictOldest, storage.SessionLimitRefuse)
	}

	// OIDC Back-Channel Logout 1.0 §2.2: where the client receives logout
	// tokens. The server POSTs to it by itself, so the rules are those of
	// a web URL it calls (https, http only on loopback for development),
	// and "MUST NOT include a fragment component".
	if md.BackchannelLogoutURI != "" {
		if err := validateBackchannelLogoutURI(md.BackchannelLogoutURI); err != nil {
			return md, invalidMetadata("backchannel_logout_uri %q: %s", truncate(md.BackchannelLogoutURI), err)
		}
	}
	if md.BackchannelLogoutSessionRequired && md.BackchannelLogoutURI == "" {
		// §2.2: the flag qualifies the URI; alone it is a mistake that
		// would silently mean no logout tokens at all.
		return md, invalidMetadata("backchannel_logout_session_required needs backchannel_logout_uri")
	}

	// RFC 8707: the resources this client may name as the audience of its
	// tokens.
	if md.AllowedResources, err = cleanResources(md.AllowedResources); err != nil {
		return md, err
	}

	// RFC 7591 §2: client_name is human-readable; it is shown on the
	// consent page.
	if utf8.RuneCountInString(md.ClientName) > MaxClientNameLen {
		return md, invalidMetadata("client_name is longer than %d characters", MaxClientNameLen)
	}
	if err := checkText("client_name", md.ClientName); err != nil {
		return md, err
	}

	// RFC 7591 §2 and §5: client_uri, logo_uri, policy_uri and tos_uri are
	// shown to people (and logo_uri fetched by their browsers); they must
	// be web pages served over TLS, not javascript: or data: links.
	for _, f := range []struct{ name, val string }{
		{"client_uri", md.ClientURI},
		{"logo_uri", md.LogoURI},
		{"policy_uri", md.PolicyURI},
		{"tos_uri", md.TosURI},
	} {
		if f.val == "" {
			continue
		}
		if err := validateWebURL(f.val); err != nil {
			return md, invalidMetadata("%s %q: %s", f.name, f.val, err)
		}
	}

	// RFC 7591 §2: contacts are ways to reach the people responsible,
	// typically email addresses.
	if len(md.Contacts) > MaxContacts {
		return md, invalidMetadata("contacts has %d entries, at most %d are allowed", len(md.Contacts), MaxContacts)
	}
	var contacts []string
	for i, c := range md.Contacts {
		c = strings.TrimSpace(c)
		switch {
		case c == "":
			return md, invalidMetadata("contacts[%d] is empty", i)
		case len(c) > MaxContactLen:
			return md, invalidMetadata("contacts[%d] is longer than %d bytes", i, MaxContactLen)
		}
		if err := checkText(fmt.Sprintf("contacts[%d]", i), c); err != nil {
			return md, err
		}
		if !slices.Contains(contacts, c) {
			contacts = append(contacts, c)
		}
	}
	md.Contacts = contacts

	// skip_consent needs nothing: a boolean, false unless given.
	return md, nil
}

// cleanList checks that every element of list is in allowed and returns it
// without duplicates, in order.
func cleanList(field string, list, allowed []string) ([]string, error) {
	var out []string
	for i, v := range list {
		if !slices.Contains(allowed, v) {
			return nil, invalidMetadata("%s[%d] %q is not supported (want one of %q)", field, i, truncate(v), allowed)
		}
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out, nil
}

// cleanURIs validates each redirect URI and drops exact duplicates: they
// mean nothing more than one copy and matching is by exact string.
func cleanURIs(field string, uris []string, appType string) ([]string, error) {
	if len(uris) > MaxRedirectURIs {
		return nil, invalidRedirectURI("%s has %d entries, at most %d are allowed", field, len(uris), MaxRedirectURIs)
	}
	var out []string
	for i, u := range uris {
		if err := ValidateRedirectURI(u, appType); err != nil {
			var re *RegistrationError
			if errors.As(err, &re) {
				re.Description = fmt.Sprintf("%s[%d]: %s", field, i, re.Description)
			}
			return nil, err
		}
		if !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out, nil
}

// cleanScope checks that scope is a list of RFC 6749 §3.3 scope-tokens and
// returns it with duplicates removed and single spaces between tokens; ""
// when it has none.
func cleanScope(scope string) (string, error) {
	// RFC 6749 §3.3: scope = scope-token *( SP scope-token ). Only the
	// space separates; a tab or newline is a character no token may hold.
	tokens := strings.FieldsFunc(scope, func(r rune) bool { return r == ' ' }) // tolerate doubled or edge spaces
	// Counted before removing duplicates, which is quadratic: 64 KiB of
	// metadata could hold tens of thousands of tokens.
	if len(tokens) > MaxScopes {
		return "", invalidMetadata("scope has %d scope-tokens, at most %d are allowed", len(tokens), MaxScopes)
	}
	var out []string
	for _, s := range tokens {
		if len(s) > MaxScopeLen {
			return "", invalidMetadata("scope %q is longer than %d bytes", truncate(s), MaxScopeLen)
		}
		if i := strings.IndexFunc(s, func(r rune) bool { return !isScopeChar(r) }); i >= 0 {
			return "", invalidMetadata("scope %q contains %q, which RFC 6749 §3.3 does not allow in a scope (printable ASCII except space, \" and \\)",
				truncate(s), []rune(s[i:])[0])
		}
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return strings.Join(out, " "), nil
}

// isScopeChar reports whether r may appear in an RFC 6749 §3.3
// scope-token: %x21 / %x23-5B / %x5D-7E.
func isScopeChar(r rune) bool {
	return r == 0x21 || 0x23 <= r && r <= 0x5b || 0x5d <= r && r <= 0x7e
}

// cleanResources validates the allowed_resources and drops exact
// duplicates: matching a requested resource is by exact string.
func cleanResources(resources []string) ([]string, error) {
	if len(resources) > MaxAllowedResources {
		return nil, invalidMetadata("allowed_resources has %d entries, at most %d are allowed", len(resources), MaxAllowedResources)
	}
	var out []string
	for i, r := range resources {
		if err := validateResource(r); err != nil {
			return nil, invalidMetadata("allowed_resources[%d] %q: %s", i, truncate(r), err)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// validateResource checks an RFC 8707 resource indicator: an absolute URI
// without a fragment, https (or http on a loopback host, for development),
// with a host and no user information, spelled canonically so that exact
// matching against a request's resource parameter does what it says.
// Returns the reason or nil.
func validateResource(raw string) error {
	if raw == "" {
		return errors.New("is empty")
	}
	// RFC 8707 §2: "The value ... MUST NOT include a fragment component."
	// Checked on the raw string: url.URL does not report an empty one.
	if strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment (#) (RFC 8707 §2)")
	}
	if err := validateWebURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw) // validateWebURL parsed it
	if !strings.HasPrefix(raw, u.Scheme+":") {
		return errors.New("the scheme must be lower case")
	}
	return nil
}

// validateBackchannelLogoutURI checks a back-channel logout URI: an
// absolute https URL (http on a loopback host, for development) with a
// host, no user information and no fragment, its scheme in lower case.
// Returns the reason or nil.
func validateBackchannelLogoutURI(raw string) error {
	// Checked on the raw string: url.URL does not report an empty fragment.
	if strings.Contains(raw, "#") {
		return errors.New("must not contain a fragment (#) (OIDC Back-Channel Logout §2.2)")
	}
	if err := validateWebURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw) // validateWebURL parsed it
	if !strings.HasPrefix(raw, u.Scheme+":") {
		return errors.New("the scheme must be lower case")
	}
	return nil
}

// checkText rejects invalid UTF-8 and control characters in a
// human-readable value: it ends up in HTML, emails and logs.
func checkText(field, s string) error {
	if !utf8.ValidString(s) {
		return invalidMetadata("%s is not valid UTF-8", field)
	}
	if strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return invalidMetadata("%s contains control characters", field)
	}
	return nil
}

// truncate shortens a value quoted in an error message.
func truncate(s string) string {
	const max = 100
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// ValidateRedirectURI reports whether raw may be registered as a redirect
// URI (or post-logout redirect URI) of a client of the given
// application_type ("web", "native"; "" means "web"). Errors are
// *RegistrationError with code invalid_redirect_uri, or
// invalid_client_metadata for an unknown application type.
//
// Accepted are absolute URIs of at most MaxURILen characters, made only of
// characters RFC 3986 allows, with valid percent-encoding, no fragment and
// no user information, and one of:
//   - https with a host;
//   - http on a loopback host: 127.0.0.1, [::1] or localhost (any port);
//   - for native clients only, a private-use scheme containing a period,
//     such as com.example.app:/callback (RFC 8252 §7.1).
func ValidateRedirectURI(raw, applicationType string) error {
	switch applicationType {
	case "", ApplicationTypeWeb, ApplicationTypeNative:
	default:
		return invalidMetadata("application_type %q is not supported", applicationType)
	}
	bad := func(reason string) error {
		return invalidRedirectURI("%q: %s", truncate(raw), reason)
	}
	if raw == "" {
		return bad("is empty")
	}
	if len(raw) > MaxURILen {
		return bad(fmt.Sprintf("is longer than %d characters", MaxURILen))
	}
	if err := checkURIChars(raw); err != "" {
		return bad(err)
	}
	// RFC 6749 §3.1.2: "The endpoint URI MUST NOT include a fragment
	// component." Checked on the raw string: "https://a/cb#" has an empty
	// fragment that url.URL does not report.
	if strings.Contains(raw, "#") {
		return bad("must not contain a fragment (#)")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("does not parse as a URI")
	}
	// RFC 6749 §3.1.2: "The redirection endpoint URI MUST be an absolute
	// URI as defined by RFC 3986 Section 4.3."
	if !u.IsAbs() {
		return bad("is not an absolute URI (no scheme)")
	}
	// Userinfo makes "https://good.example@evil.example/" look like it
	// goes to good.example (RFC 3986 §7.6, RFC 9700 §4.1.3).
	if u.User != nil {
		return bad("must not contain user information (@ in the authority)")
	}
	// Matching at the authorize endpoint is exact (RFC 9700 §4.1.3), so a
	// registered "HTTP://127.0.0.1/cb" would only ever match itself and
	// miss the loopback port exception. Insist on the canonical spelling.
	if !strings.HasPrefix(raw, u.Scheme+":") {
		return bad("the scheme must be lower case")
	}
	switch u.Scheme { // url.Parse lower-cases the scheme
	// Schemes that run code or read local data in the browser rather than
	// navigate to a client (RFC 9700 §4.1.3; OWASP XSS).
	case "javascript", "data", "vbscript", "file", "blob", "about", "filesystem":
		return bad(fmt.Sprintf("scheme %q is not allowed", u.Scheme))
	case "https":
		if u.Opaque != "" || u.Hostname() == "" {
			return bad("https URI must have a host (https://host/...)")
		}
		return nil
	case "http":
		if u.Opaque != "" || u.Hostname() == "" {
			return bad("http URI must have a host (http://host/...)")
		}
		// RFC 8252 §7.3 and §8.3 allow plain http only on the loopback
		// interface, where nothing on the network can read the code. The
		// host must be exactly loopback: http://localhost.evil.test is not.
		if !isLoopbackHost(u.Hostname()) {
			return bad("plain http is allowed only for loopback hosts (127.0.0.1, [::1], localhost); use https")
		}
		return nil
	}
	// A private-use URI scheme (RFC 8252 §7.1) can only reach an app on
	// the device: it makes sense for native clients only.
	if applicationType != ApplicationTypeNative {
		return bad(fmt.Sprintf("scheme %q is allowed only for native clients (web clients use https)", u.Scheme))
	}
	// RFC 8252 §7.1: "apps MUST use a URI scheme based on a domain name
	// under their control, expressed in reverse order" (com.example.app).
	if !strings.Contains(u.Scheme, ".") {
		return bad(fmt.Sprintf("private-use scheme %q must be a reverse domain name containing a period, such as com.example.app", u.Scheme))
	}
	if u.Opaque == "" && u.Host == "" && u.Path == "" {
		return bad("has nothing after the scheme")
	}
	return nil
}

// isLoopbackHost accepts the loopback names exactly as the redirect URI
// matcher knows them: lower-case localhost, 127.0.0.1 and ::1.
func isLoopbackHost(host string) bool {
	return host == "127.0.0.1" || host == "::1" || host == "localhost"
}

// checkURIChars returns why raw contains something RFC 3986 §2 does not
// allow in a URI, or "". Backslashes, spaces, quotes and non-ASCII are all
// rejected: browsers and parsers disagree about them (a backslash is a
// slash to a browser), which is how open redirects are made.
func checkURIChars(raw string) string {
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~:/?#[]@!$&'()*+,;=", c) >= 0:
		case c == '%':
			if i+2 >= len(raw) || !isHex(raw[i+1]) || !isHex(raw[i+2]) {
				return "has a % not followed by two hex digits"
			}
			i += 2
		default:
			if c < 0x20 || c == 0x7f {
				return "contains a control character"
			}
			if c >= 0x80 {
				return "contains a non-ASCII character; percent-encode it"
			}
			return fmt.Sprintf("contains the character %q, which is not allowed in a URI", c)
		}
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// validateWebURL checks an informational URL (client_uri, logo_uri, ...):
// https, or http on loopback for development; absolute with a host; no
// userinfo. Returns the reason or nil.
func validateWebURL(raw string) error {
	if len(raw) > MaxURILen {
		return fmt.Errorf("is longer than %d characters", MaxURILen)
	}
	if reason := checkURIChars(raw); reason != "" {
		return fmt.Errorf("%s", reason)
	}
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return fmt.Errorf("does not parse as a URL")
	case u.Scheme != "https" && u.Scheme != "http":
		return fmt.Errorf("must be an https URL")
	case u.Opaque != "" || u.Hostname() == "":
		return fmt.Errorf("must have a host")
	case u.User != nil:
		return fmt.Errorf("must not contain user information (@ in the authority)")
	case u.Scheme == "http" && !isLoopbackHost(u.Hostname()):
		return fmt.Errorf("plain http is allowed only for loopback hosts; use https")
	}
	return nil
}
