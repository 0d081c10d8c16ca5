package oidc

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// Endpoint paths, relative to the issuer.
const (
	PathDiscovery = "/.well-known/openid-configuration"
	PathAuthorize = "/authorize"
	PathToken     = "/token"
	PathUserinfo  = "/userinfo"
	PathJWKS      = "/jwks"
	PathLogin     = "/login"
	PathConsent   = "/consent"
	// The account page and its forms.
	PathAccount           = "/account"
	PathAccountEndSession = "/account/sessions/end"
	PathAccountEndOthers  = "/account/sessions/end-others"
	PathAccountRevokeApp  = "/account/apps/revoke"
	PathRevoke            = "/revoke"
	PathIntrospect        = "/introspect"
	// PathLogout is the end_session_endpoint (RP-Initiated Logout §2.1);
	// PathLogoutConfirm takes the confirmation form, apart so that the
	// endpoint itself can accept cross-site POSTs from apps.
	PathLogout        = "/logout"
	PathLogoutConfirm = "/logout/confirm"
)

// discoveryDoc is the OpenID Provider metadata (OIDC Discovery 1.0 §3),
// which is also RFC 8414 authorization server metadata. Only what is
// implemented is advertised.
type discoveryDoc struct {
	Issuer                            string   `json:"issuer"`
	AuthorizationEndpoint             string   `json:"authorization_endpoint"`
	TokenEndpoint                     string   `json:"token_endpoint"`
	UserinfoEndpoint                  string   `json:"userinfo_endpoint"`
	JWKSURI                           string   `json:"jwks_uri"`
	RevocationEndpoint                string   `json:"revocation_endpoint"`
	IntrospectionEndpoint             string   `json:"introspection_endpoint"`
	EndSessionEndpoint                string   `json:"end_session_endpoint"`
	ScopesSupported                   []string `json:"scopes_supported"`
	ResponseTypesSupported            []string `json:"response_types_supported"`
	ResponseModesSupported            []string `json:"response_modes_supported"`
	GrantTypesSupported               []string `json:"grant_types_supported"`
	SubjectTypesSupported             []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported  []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported []string `json:"token_endpoint_auth_methods_supported"`
	RevocationAuthMethodsSupported    []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionAuthMethodsSupported []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported     []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                   []string `json:"claims_supported"`
	PromptValuesSupported             []string `json:"prompt_values_supported"`
	UILocalesSupported                []string `json:"ui_locales_supported"`
	ClaimsParameterSupported          bool     `json:"claims_parameter_supported"`
	RequestParameterSupported         bool     `json:"request_parameter_supported"`
	RequestURIParameterSupported      bool     `json:"request_uri_parameter_supported"`
	AuthorizationResponseISSSupported bool     `json:"authorization_response_iss_parameter_supported"`
	// OIDC Back-Channel Logout 1.0 §2.1. Front-channel logout is not
	// offered, so frontchannel_logout_supported is absent (false).
	BackchannelLogoutSupported        bool `json:"backchannel_logout_supported"`
	BackchannelLogoutSessionSupported bool `json:"backchannel_logout_session_supported"`
}

func (p *Provider) buildDiscovery() ([]byte, error) {
	d := discoveryDoc{
		Issuer:                            p.cfg.Issuer,
		AuthorizationEndpoint:             p.endpoint(PathAuthorize),
		TokenEndpoint:                     p.endpoint(PathToken),
		UserinfoEndpoint:                  p.endpoint(PathUserinfo),
		JWKSURI:                           p.endpoint(PathJWKS),
		RevocationEndpoint:                p.endpoint(PathRevoke),
		IntrospectionEndpoint:             p.endpoint(PathIntrospect),
		EndSessionEndpoint:                p.endpoint(PathLogout),
		ScopesSupported:                   StandardScopes(),
		ResponseTypesSupported:            []string{"code"},
		ResponseModesSupported:            []string{"query"},
		GrantTypesSupported:               []string{"authorization_code", "refresh_token", "client_credentials"},
		SubjectTypesSupported:             []string{"public"},
		IDTokenSigningAlgValuesSupported:  p.cfg.SigningAlgorithms,
		TokenEndpointAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post", "none"},
		// Public clients may revoke their own tokens (RFC 7009 §5); only
		// confidential clients may introspect (RFC 7662 §2.1).
		RevocationAuthMethodsSupported:    []string{"client_secret_basic", "client_secret_post", "none"},
		IntrospectionAuthMethodsSupported: []string{"client_secret_basic", "client_secret_post"},
		CodeChallengeMethodsSupported:     []string{"S256"},
		ClaimsSupported: []string{"iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
			"at_hash", "sid", "amr", "name", "email", "email_verified"},
		PromptValuesSupported:             []string{"none", "login", "consent"},
		UILocalesSupported:                []string{"en", "zh-Hans"},
		AuthorizationResponseISSSupported: true,
		BackchannelLogoutSupported:        true,
		BackchannelLogoutSessionSupported: true,
	}
	return json.MarshalIndent(d, "", "  ")
}

// HandleDiscovery serves the provider metadata. It is public, cacheable and
// readable from browsers (CORS), like the JWKS.
func (p *Provider) HandleDiscovery(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "public, max-age=3600")
	h.Set("Access-Control-Allow-Origin", "*")
	_, _ = w.Write(p.discovery)
}

// HandleJWKS serves the public signing keys from memory with an ETag, so
// resource servers can revalidate cheaply.
func (p *Provider) HandleJWKS(w http.ResponseWriter, r *http.Request) {
	body, etag := p.deps.Keys.JWKS()
	h := w.Header()
	h.Set("Content-Type", "application/jwk-set+json")
	h.Set("Cache-Control", "public, max-age="+strconv.Itoa(int(p.deps.Keys.JWKSMaxAge().Seconds())))
	h.Set("ETag", etag)
	h.Set("Access-Control-Allow-Origin", "*")
	if etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	_, _ = w.Write(body)
}

// etagMatches implements If-None-Match (RFC 9110 §13.1.2): a list of
// entity tags or "*", compared weakly (a W/ prefix is ignored).
func etagMatches(headers []string, etag string) bool {
	for _, h := range headers {
		for _, t := range strings.Split(h, ",") {
			t = strings.TrimSpace(t)
			if t == "*" || strings.TrimPrefix(t, "W/") == strings.TrimPrefix(etag, "W/") {
				return true
			}
		}
	}
	return false
}
