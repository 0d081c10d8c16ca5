package clients

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Error codes of RFC 7591 §3.2.2.
const (
	CodeInvalidRedirectURI    = "invalid_redirect_uri"
	CodeInvalidClientMetadata = "invalid_client_metadata"
)

// RegistrationError is an RFC 7591 §3.2.2 error: Code is one of the Code*
// constants; Description names the offending field and value, and is safe
// to show to whoever registers the client.
type RegistrationError struct {
	Code        string `json:"error"`
	Description string `json:"error_description,omitempty"`
}

func (e *RegistrationError) Error() string {
	return e.Code + ": " + e.Description
}

func invalidMetadata(format string, args ...any) *RegistrationError {
	return &RegistrationError{Code: CodeInvalidClientMetadata, Description: fmt.Sprintf(format, args...)}
}

func invalidRedirectURI(format string, args ...any) *RegistrationError {
	return &RegistrationError{Code: CodeInvalidRedirectURI, Description: fmt.Sprintf(format, args...)}
}

// wantSeconds describes the members that hold a number of seconds.
const wantSeconds = "a whole number of seconds (an integer)"

// MaxMetadataSize is the largest metadata document ParseMetadata reads.
const MaxMetadataSize = 64 << 10

// ParseMetadata reads one JSON object of RFC 7591 client metadata from r.
// Members Gatehouse does not know are ignored (RFC 7591 §2: "The
// authorization server MUST ignore any client metadata sent by the client
// that it does not understand"). Member names match exactly, as JSON keys
// do (encoding/json alone would also take "Redirect_URIs"); a member given
// twice, a member of the wrong type, a document that is not one object or
// is larger than MaxMetadataSize is a *RegistrationError with code
// invalid_client_metadata. A JSON null counts as an absent member.
//
// ParseMetadata only decodes: Service.Register validates.
func ParseMetadata(r io.Reader) (storage.ClientMetadata, error) {
	var md storage.ClientMetadata
	data, err := io.ReadAll(io.LimitReader(r, MaxMetadataSize+1))
	if err != nil {
		return md, fmt.Errorf("read client metadata: %w", err)
	}
	if len(data) > MaxMetadataSize {
		return md, invalidMetadata("client metadata is larger than %d bytes", MaxMetadataSize)
	}
	members, err := splitObject(data)
	if err != nil {
		return md, err
	}
	fields := []struct {
		name string
		dst  any
		want string
	}{
		{"client_name", &md.ClientName, "a string"},
		{"redirect_uris", &md.RedirectURIs, "an array of strings"},
		{"post_logout_redirect_uris", &md.PostLogoutRedirectURIs, "an array of strings"},
		{"grant_types", &md.GrantTypes, "an array of strings"},
		{"response_types", &md.ResponseTypes, "an array of strings"},
		{"token_endpoint_auth_method", &md.TokenEndpointAuthMethod, "a string"},
		{"scope", &md.Scope, "a string"},
		{"application_type", &md.ApplicationType, "a string"},
		{"client_uri", &md.ClientURI, "a string"},
		{"logo_uri", &md.LogoURI, "a string"},
		{"policy_uri", &md.PolicyURI, "a string"},
		{"tos_uri", &md.TosURI, "a string"},
		{"contacts", &md.Contacts, "an array of strings"},
		{"skip_consent", &md.SkipConsent, "a boolean"},
		{"access_token_format", &md.AccessTokenFormat, "a string"},
		{"refresh_token_idle_lifetime", &md.RefreshTokenIdleLifetime, wantSeconds},
		{"refresh_token_absolute_lifetime", &md.RefreshTokenAbsoluteLifetime, wantSeconds},
		{"allowed_resources", &md.AllowedResources, "an array of strings"},
		{"id_token_signed_response_alg", &md.IDTokenSignedResponseAlg, "a string"},
		{"max_sessions_per_user", &md.MaxSessionsPerUser, "a whole number"},
		{"session_limit_action", &md.SessionLimitAction, "a string"},
		{"backchannel_logout_uri", &md.BackchannelLogoutURI, "a string"},
		{"backchannel_logout_session_required", &md.BackchannelLogoutSessionRequired, "a boolean"},
	}
	for _, f := range fields {
		raw, ok := members[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(raw, f.dst); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				got := describeJSON(raw)
				if f.want == wantSeconds && got == "a number" {
					// 1.5, 1e3 and 2^63 are numbers too: say which.
					got = truncate(string(bytes.TrimSpace(raw)))
				}
				return storage.ClientMetadata{}, invalidMetadata("%s must be %s, not %s", f.name, f.want, got)
			}
			return storage.ClientMetadata{}, invalidMetadata("%s: %v", f.name, err)
		}
	}
	return md, nil
}

// splitObject checks that data is exactly one JSON object with no member
// given twice, and returns its members undecoded.
func splitObject(data []byte) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return nil, invalidMetadata("client metadata is not valid JSON: %v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalidMetadata("client metadata must be a JSON object")
	}
	members := make(map[string]json.RawMessage)
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalidMetadata("client metadata is not valid JSON: %v", err)
		}
		name, _ := tok.(string) // object keys are always strings
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, invalidMetadata("client metadata is not valid JSON: %v", err)
		}
		// Two spellings of one member are two meanings; a proxy and this
		// server could each pick a different one.
		if _, dup := members[name]; dup {
			return nil, invalidMetadata("member %q appears more than once", name)
		}
		members[name] = raw
	}
	if _, err := dec.Token(); err != nil { // the closing '}'
		return nil, invalidMetadata("client metadata is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidMetadata("client metadata has data after the JSON object")
	}
	return members, nil
}

// describeJSON names the JSON type of raw, or of the first element of the
// wrong type when raw is an array, for error messages.
func describeJSON(raw json.RawMessage) string {
	kind := func(b []byte) string {
		b = bytes.TrimSpace(b)
		if len(b) == 0 {
			return "nothing"
		}
		switch b[0] {
		case '{':
			return "an object"
		case '[':
			return "an array"
		case '"':
			return "a string"
		case 't', 'f':
			return "a boolean"
		case 'n':
			return "null"
		default:
			return "a number"
		}
	}
	k := kind(raw)
	if k != "an array" {
		return k
	}
	var elems []json.RawMessage
	if json.Unmarshal(raw, &elems) == nil {
		for _, e := range elems {
			if ek := kind(e); ek != "a string" {
				return "an array containing " + ek
			}
		}
	}
	return k
}
