package clients_test

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/gatehouse-idp/gatehouse/internal/clients"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func TestParseMetadata(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want storage.ClientMetadata
	}{
		{"empty object", `{}`, storage.ClientMetadata{}},
		{"whitespace around", " \n{}\n\t ", storage.ClientMetadata{}},
		{"every field", `{
			"client_name": "Example",
			"redirect_uris": ["https://app.example/cb"],
			"post_logout_redirect_uris": ["https://app.example/bye"],
			"grant_types": ["authorization_code", "refresh_token"],
			"response_types": ["code"],
			"token_endpoint_auth_method": "client_secret_post",
			"scope": "openid email",
			"application_type": "web",
			"client_uri": "https://app.example/",
			"logo_uri": "https://app.example/logo.png",
			"policy_uri": "https://app.example/privacy",
			"tos_uri": "https://app.example/tos",
			"contacts": ["ops@app.example"],
			"skip_consent": true,
			"access_token_format": "opaque",
			"refresh_token_idle_lifetime": 86400,
			"refresh_token_absolute_lifetime": 7776000,
			"allowed_resources": ["https://api.example/"],
			"backchannel_logout_uri": "https://app.example/backchannel",
			"backchannel_logout_session_required": true
		}`, storage.ClientMetadata{
			ClientName:                   "Example",
			RedirectURIs:                 []string{"https://app.example/cb"},
			PostLogoutRedirectURIs:       []string{"https://app.example/bye"},
			GrantTypes:                   []string{"authorization_code", "refresh_token"},
			ResponseTypes:                []string{"code"},
			TokenEndpointAuthMethod:      "client_secret_post",
			Scope:                        "openid email",
			ApplicationType:              "web",
			ClientURI:                    "https://app.example/",
			LogoURI:                      "https://app.example/logo.png",
			PolicyURI:                    "https://app.example/privacy",
			TosURI:                       "https://app.example/tos",
			Contacts:                     []string{"ops@app.example"},
			SkipConsent:                  true,
			AccessTokenFormat:            "opaque",
			RefreshTokenIdleLifetime:     86400,
			RefreshTokenAbsoluteLifetime: 7776000,
			AllowedResources:             []string{"https://api.example/"},
			BackchannelLogoutURI:         "https://app.example/backchannel",

			BackchannelLogoutSessionRequired: true,
		}},
		// RFC 7591 §2: the server MUST ignore metadata it does not
		// understand, whatever its type.
		{"unknown members ignored", `{
			"client_name": "X",
			"software_id": "4NRB1-0XZABZI9E6-5SM3R",
			"jwks": {"keys": [{"kty": "EC"}]},
			"default_max_age": 3600,
			"require_auth_time": true,
			"client_name#ja-Jpan-JP": "クライアント名",
			"x": null
		}`, storage.ClientMetadata{ClientName: "X"}},
		// JSON member names are case-sensitive; encoding/json alone would
		// fill RedirectURIs from this.
		{"member names are case-sensitive", `{"Redirect_URIs": ["https://evil.example/cb"], "CLIENT_NAME": "x"}`, storage.ClientMetadata{}},
		{"null is absent", `{"client_name": null, "redirect_uris": null, "skip_consent": null, "refresh_token_idle_lifetime": null, "allowed_resources": null}`, storage.ClientMetadata{}},
		// Validate, not ParseMetadata, decides what a negative lifetime
		// means.
		{"negative lifetime decodes", `{"refresh_token_idle_lifetime": -5}`, storage.ClientMetadata{RefreshTokenIdleLifetime: -5}},
		{"large lifetime decodes", `{"refresh_token_absolute_lifetime": 9223372036854775807}`, storage.ClientMetadata{RefreshTokenAbsoluteLifetime: 9223372036854775807}},
		{"skip_consent false", `{"skip_consent": false}`, storage.ClientMetadata{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clients.ParseMetadata(strings.NewReader(tt.in))
			if err != nil {
				t.Fatalf("ParseMetadata error = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMetadata =\n%+v\nwant\n%+v", got, tt.want)
			}
		})
	}
}

func TestParseMetadataErrors(t *testing.T) {
	pad := func(n int) string { // a valid document of exactly n bytes
		const base = `{"client_name":"x"}`
		return base[:len(base)-1] + strings.Repeat(" ", n-len(base)) + "}"
	}
	tests := []struct {
		name     string
		in       string
		wantDesc string // a substring of the description
	}{
		{"empty input", ``, "not valid JSON"},
		{"only whitespace", "  \n", "not valid JSON"},
		{"array", `[]`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"string", `"client"`, "must be a JSON object"},
		{"number", `42`, "must be a JSON object"},
		{"truncated", `{"client_name": "x"`, "not valid JSON"},
		{"syntax error", `{"client_name" "x"}`, "not valid JSON"},
		{"trailing comma", `{"client_name": "x",}`, "not valid JSON"},
		{"trailing object", `{} {}`, "data after the JSON object"},
		{"trailing garbage", `{}x`, "data after the JSON object"},
		{"trailing array", `{"client_name": "x"}[]`, "data after the JSON object"},
		{"duplicate member", `{"client_name": "a", "client_name": "b"}`, `"client_name" appears more than once`},
		{"duplicate unknown member", `{"x": 1, "x": 2}`, `"x" appears more than once`},
		{"redirect_uris is a string", `{"redirect_uris": "https://a.example/cb"}`, "redirect_uris must be an array of strings, not a string"},
		{"redirect_uris contains a number", `{"redirect_uris": ["https://a.example/cb", 1]}`, "redirect_uris must be an array of strings, not an array containing a number"},
		{"grant_types contains an object", `{"grant_types": [{}]}`, "grant_types must be an array of strings, not an array containing an object"},
		{"client_name is a number", `{"client_name": 5}`, "client_name must be a string, not a number"},
		{"scope is an array", `{"scope": ["openid"]}`, "scope must be a string, not an array"},
		{"skip_consent is a string", `{"skip_consent": "true"}`, "skip_consent must be a boolean, not a string"},
		{"skip_consent is a number", `{"skip_consent": 1}`, "skip_consent must be a boolean, not a number"},
		{"max_sessions_per_user is a string", `{"max_sessions_per_user": "3"}`, "max_sessions_per_user must be a whole number, not a string"},
		{"max_sessions_per_user is a fraction", `{"max_sessions_per_user": 1.5}`, "max_sessions_per_user must be a whole number, not a number"},
		{"session_limit_action is a boolean", `{"session_limit_action": true}`, "session_limit_action must be a string, not a boolean"},
		{"backchannel_logout_uri is an array", `{"backchannel_logout_uri": ["https://a.example/bc"]}`, "backchannel_logout_uri must be a string, not an array"},
		{"backchannel_logout_session_required is a string", `{"backchannel_logout_session_required": "yes"}`, "backchannel_logout_session_required must be a boolean, not a string"},
		{"contacts is an object", `{"contacts": {"a": "b"}}`, "contacts must be an array of strings, not an object"},
		{"token_endpoint_auth_method is a bool", `{"token_endpoint_auth_method": true}`, "token_endpoint_auth_method must be a string, not a boolean"},
		{"access_token_format is a number", `{"access_token_format": 1}`, "access_token_format must be a string, not a number"},
		{"idle lifetime is a string", `{"refresh_token_idle_lifetime": "3600"}`, "refresh_token_idle_lifetime must be a whole number of seconds (an integer), not a string"},
		{"idle lifetime has a fraction", `{"refresh_token_idle_lifetime": 1.5}`, "refresh_token_idle_lifetime must be a whole number of seconds (an integer), not 1.5"},
		{"absolute lifetime has an exponent", `{"refresh_token_absolute_lifetime": 1e6}`, "refresh_token_absolute_lifetime must be a whole number of seconds (an integer), not 1e6"},
		{"absolute lifetime overflows", `{"refresh_token_absolute_lifetime": 9223372036854775808}`, "refresh_token_absolute_lifetime must be a whole number of seconds (an integer), not 9223372036854775808"},
		{"absolute lifetime is a boolean", `{"refresh_token_absolute_lifetime": true}`, "refresh_token_absolute_lifetime must be a whole number of seconds (an integer), not a boolean"},
		{"allowed_resources is a string", `{"allowed_resources": "https://api.example/"}`, "allowed_resources must be an array of strings, not a string"},
		{"oversized", pad(clients.MaxMetadataSize + 1), "larger than 65536 bytes"},
		{"oversized and unterminated", "[" + strings.Repeat("1,", 1<<20), "larger than 65536 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			md, err := clients.ParseMetadata(strings.NewReader(tt.in))
			var re *clients.RegistrationError
			if !errors.As(err, &re) {
				t.Fatalf("ParseMetadata error = %v (%T), want *RegistrationError", err, err)
			}
			if re.Code != clients.CodeInvalidClientMetadata {
				t.Errorf("Code = %q, want %q", re.Code, clients.CodeInvalidClientMetadata)
			}
			if !strings.Contains(re.Description, tt.wantDesc) {
				t.Errorf("Description = %q, want it to contain %q", re.Description, tt.wantDesc)
			}
			if !reflect.DeepEqual(md, storage.ClientMetadata{}) {
				t.Errorf("ParseMetadata returned %+v along with an error", md)
			}
		})
	}

	t.Run("exactly the limit", func(t *testing.T) {
		if _, err := clients.ParseMetadata(strings.NewReader(pad(clients.MaxMetadataSize))); err != nil {
			t.Errorf("ParseMetadata of a %d-byte document: %v", clients.MaxMetadataSize, err)
		}
	})
	t.Run("read error", func(t *testing.T) {
		boom := errors.New("boom")
		_, err := clients.ParseMetadata(iotest.ErrReader(boom))
		if !errors.Is(err, boom) {
			t.Errorf("ParseMetadata error = %v, want it to wrap the reader's error", err)
		}
	})
}
