package oauth

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestSingleParams(t *testing.T) {
	tests := []struct {
		name    string
		v       url.Values
		wantErr bool
	}{
		{"RFC 6749 §3.1 each once", url.Values{"a": {"1"}, "b": {"2"}}, false},
		{"absent", url.Values{}, false},
		{"empty value once", url.Values{"a": {""}}, false},
		{"RFC 6749 §3.1 unknown parameter repeated", url.Values{"a": {"1"}, "z": {"1", "2"}}, false},
		{"unknown parameter oversized", url.Values{"z": {strings.Repeat("z", maxParamLen+1)}}, false},
		{"exactly maxParamLen", url.Values{"a": {strings.Repeat("a", maxParamLen)}}, false},
		{"RFC 6749 §3.1 repeated", url.Values{"a": {"1", "1"}}, true},
		{"repeated empty", url.Values{"b": {"", ""}}, true},
		{"maxParamLen + 1", url.Values{"b": {strings.Repeat("b", maxParamLen+1)}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := singleParams(tt.v, "a", "b")
			if !tt.wantErr {
				if e != nil {
					t.Fatalf("error = %v", e)
				}
				return
			}
			wantError(t, e, "invalid_request", 400)
		})
	}
}

func TestParseScope(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"   ", nil},
		{"openid", []string{"openid"}},
		{"openid profile", []string{"openid", "profile"}},
		{"profile openid", []string{"profile", "openid"}},
		{" openid  profile ", []string{"openid", "profile"}},
		{"openid openid profile openid", []string{"openid", "profile"}},
		{"openid\tprofile", []string{"openid\tprofile"}}, // RFC 6749 §3.3: SP is the only delimiter
		{"OpenID openid", []string{"OpenID", "openid"}},  // case-sensitive
	}
	for _, tt := range tests {
		t.Run("scope "+tt.in, func(t *testing.T) {
			got := parseScope(tt.in)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("parseScope(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if tt.want != nil && JoinScope(got) != strings.Join(tt.want, " ") {
				t.Errorf("JoinScope(%q) = %q", got, JoinScope(got))
			}
		})
	}
}

func TestValidScopeToken(t *testing.T) {
	// RFC 6749 §3.3: scope-token = 1*( %x21 / %x23-5B / %x5D-7E )
	tests := []struct {
		name string
		s    string
		want bool
	}{
		{"letters", "openid", true},
		{"URI", "https://api.example/read:all", true},
		{"lowest %x21", "!", true},
		{"%x23", "#", true},
		{"%x5B", "[", true},
		{"%x5D", "]", true},
		{"highest %x7E", "~", true},
		{"empty", "", false},
		{"space %x20", "a b", false},
		{"double quote %x22", `a"b`, false},
		{"backslash %x5C", `a\b`, false},
		{"DEL %x7F", "a\x7f", false},
		{"tab", "a\tb", false},
		{"NUL", "a\x00", false},
		{"non-ASCII", "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validScopeToken(tt.s); got != tt.want {
				t.Errorf("validScopeToken(%q) = %v, want %v", tt.s, got, tt.want)
			}
		})
	}
}

func TestScopeSets(t *testing.T) {
	t.Run("HasScope", func(t *testing.T) {
		tests := []struct {
			scopes []string
			s      string
			want   bool
		}{
			{[]string{"openid", "profile"}, "profile", true},
			{[]string{"openid", "profile"}, "email", false},
			{[]string{"openid"}, "OPENID", false},
			{nil, "openid", false},
			{[]string{"openid"}, "", false},
		}
		for _, tt := range tests {
			if got := HasScope(tt.scopes, tt.s); got != tt.want {
				t.Errorf("HasScope(%q, %q) = %v, want %v", tt.scopes, tt.s, got, tt.want)
			}
		}
	})
	t.Run("CoversScopes", func(t *testing.T) {
		tests := []struct {
			have, want []string
			ok         bool
		}{
			{[]string{"openid", "profile"}, []string{"profile"}, true},
			{[]string{"openid", "profile"}, []string{"profile", "openid"}, true},
			{[]string{"openid"}, []string{"openid", "email"}, false},
			{nil, nil, true},
			{nil, []string{"openid"}, false},
		}
		for _, tt := range tests {
			if got := CoversScopes(tt.have, tt.want); got != tt.ok {
				t.Errorf("CoversScopes(%q, %q) = %v, want %v", tt.have, tt.want, got, tt.ok)
			}
		}
	})
	t.Run("UnionScopes", func(t *testing.T) {
		a := []string{"openid", "profile"}
		got := UnionScopes(a, []string{"email", "openid", "email"})
		want := []string{"openid", "profile", "email"}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("UnionScopes = %q, want %q", got, want)
		}
		got[0] = "changed"
		if a[0] != "openid" {
			t.Error("UnionScopes aliased its first argument")
		}
	})
}

func TestParseFormBody(t *testing.T) {
	const limit = 64
	tests := []struct {
		name     string
		target   string
		body     string
		want     url.Values
		wantDesc string // substring of the description when an error is expected
	}{
		{name: "body parameters", target: "/x", body: "a=1&b=2&b=3", want: url.Values{"a": {"1"}, "b": {"2", "3"}}},
		{name: "empty body", target: "/x", body: "", want: url.Values{}},
		{name: "query string ignored", target: "/x?a=from-query&c=3", body: "a=1", want: url.Values{"a": {"1"}}},
		{name: "malformed query string ignored", target: "/x?a=%zz;b", body: "a=1", want: url.Values{"a": {"1"}}},
		{name: "body of exactly the limit", target: "/x", body: "a=" + strings.Repeat("x", limit-2), want: url.Values{"a": {strings.Repeat("x", limit-2)}}},

		{name: "body over the limit", target: "/x", body: "a=" + strings.Repeat("x", limit-1), wantDesc: "too large"},
		{name: "malformed percent-encoding", target: "/x", body: "a=%zz", wantDesc: "form encoding"},
		{name: "semicolon separator", target: "/x", body: "a=1;b=2", wantDesc: "form encoding"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequestWithContext(t.Context(), http.MethodPost, tt.target, strings.NewReader(tt.body))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			got, e := ParseFormBody(w, r, limit)
			if tt.wantDesc != "" {
				wantError(t, e, "invalid_request", http.StatusBadRequest)
				if !strings.Contains(e.Description, tt.wantDesc) {
					t.Errorf("description %q, want it to mention %q", e.Description, tt.wantDesc)
				}
				if got != nil {
					t.Errorf("values %v returned with an error", got)
				}
				return
			}
			if e != nil {
				t.Fatalf("error = %v", e)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("values = %v, want %v", got, tt.want)
			}
			if r.Form != nil || r.PostForm != nil {
				t.Error("ParseFormBody filled r.Form or r.PostForm")
			}
		})
	}
}
