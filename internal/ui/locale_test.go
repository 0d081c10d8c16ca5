package ui

import (
	"io/fs"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/gatehouse-idp/gatehouse/web"
)

func TestCatalogsHaveTheSameKeys(t *testing.T) {
	en := catalogs[0]
	for i, tag := range localeTags {
		if i == 0 {
			continue
		}
		t.Run(tag, func(t *testing.T) {
			c := catalogs[i]
			for k := range en {
				if _, ok := c[k]; !ok {
					t.Errorf("%s lacks %q (en: %q)", tag, k, en[k])
				}
			}
			for k := range c {
				if _, ok := en[k]; !ok {
					t.Errorf("%s has %q, which en lacks", tag, k)
				}
			}
		})
	}
}

func TestCatalogsOnlyHoldSupportedLanguages(t *testing.T) {
	entries, err := fs.ReadDir(web.Locales, ".")
	if err != nil {
		t.Fatal(err)
	}
	var files, want []string
	for _, e := range entries {
		files = append(files, e.Name())
	}
	for _, tag := range localeTags {
		want = append(want, tag+".json")
	}
	sort.Strings(want)
	if !slices.Equal(files, want) {
		t.Errorf("web/locales holds %v, want %v: a catalog nobody can negotiate, or a language without one", files, want)
	}
}

var verbRE = regexp.MustCompile(`%(\[\d+\])?[-+# 0]*\d*(\.\d+)?[a-zA-Z%]`)

func TestCatalogMessages(t *testing.T) {
	en := catalogs[0]
	for i, tag := range localeTags {
		for k, msg := range catalogs[i] {
			t.Run(tag+"/"+k, func(t *testing.T) {
				if strings.TrimSpace(msg) == "" {
					t.Fatalf("empty message")
				}
				got := verbRE.FindAllString(msg, -1)
				want := verbRE.FindAllString(en[k], -1)
				sort.Strings(got)
				sort.Strings(want)
				if !slices.Equal(got, want) {
					t.Errorf("format verbs %v, en has %v (%q vs %q)", got, want, msg, en[k])
				}
				if i > 0 && k != "app.name" && k != "home.title" && msg == en[k] && !strings.Contains(msg, "%") {
					t.Errorf("message is identical to English: %q, untranslated?", msg)
				}
			})
		}
	}
}

// Every key a template asks for exists in English (and so, by the test
// above, in every language); so does every key the Go code uses itself.
func TestKeysInUseExist(t *testing.T) {
	keyRE := regexp.MustCompile(`\.T "([^"]+)"`)
	used := map[string]string{}
	err := fs.WalkDir(web.Templates, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.Templates, name)
		if err != nil {
			return err
		}
		for _, m := range keyRE.FindAllStringSubmatch(string(b), -1) {
			used[m[1]] = name
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(used) < 20 {
		t.Fatalf("found only %d keys in the templates; is the pattern still right?", len(used))
	}
	// Keys the Go code and its documentation promise.
	for _, k := range []string{"error.title", "error.message", "login.error.invalid", "login.error.session_limit",
		"account.notice.signed_out", "account.notice.signed_out_others", "account.notice.revoked",
		"login.error.throttled.second", "login.error.throttled.seconds",
		"login.error.throttled.minute", "login.error.throttled.minutes",
		"scope.openid", "scope.profile", "scope.email", "scope.offline_access"} {
		used[k] = "Go code"
	}
	for _, kind := range []string{"bad_request", "invalid_client", "expired", "access_denied", "not_found", "server"} {
		used["error."+kind+".title"] = "ErrorPage doc"
		used["error."+kind+".message"] = "ErrorPage doc"
	}
	for k, where := range used {
		t.Run(k, func(t *testing.T) {
			if _, ok := catalogs[0][k]; !ok {
				t.Errorf("%s uses %q, which en.json lacks", where, k)
			}
		})
	}
}

func TestT(t *testing.T) {
	// Synthetic catalogs, to exercise the fallbacks the real (complete)
	// ones never need.
	cs := [len(localeTags)]map[string]string{
		{"greet": "Hello, %s!", "only.en": "English only", "pct": "100% sure"},
		{"greet": "你好，%s！"},
	}
	tests := []struct {
		name string
		i    int
		key  string
		args []any
		want string
	}{
		{"en with args", 0, "greet", []any{"Ann"}, "Hello, Ann!"},
		{"zh with args", 1, "greet", []any{"安"}, "你好，安！"},
		{"zh falls back to en", 1, "only.en", nil, "English only"},
		{"missing everywhere returns key", 1, "no.such.key", nil, "no.such.key"},
		{"missing in en returns key", 0, "no.such.key", []any{"x"}, "no.such.key"},
		{"no args keeps literal percent", 0, "pct", nil, "100% sure"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := translate(&cs, tt.i, tt.key, tt.args...); got != tt.want {
				t.Errorf("translate(%d, %q, %v) = %q, want %q", tt.i, tt.key, tt.args, got, tt.want)
			}
		})
	}
}

func TestLocale(t *testing.T) {
	tests := []struct {
		name    string
		loc     Locale
		tag     string
		key     string
		args    []any
		wantMsg string
	}{
		{"zero value is English", Locale{}, "en", "login.submit", nil, "Sign in"},
		{"English", Negotiate("en", ""), "en", "consent.allow", nil, "Allow"},
		{"Simplified Chinese", Negotiate("zh", ""), "zh-Hans", "consent.allow", nil, "允许"},
		{"args", Negotiate("zh", ""), "zh-Hans", "consent.signed_in_as", []any{"a@b.c"}, "当前登录账号：a@b.c"},
		{"unknown key shows", Negotiate("zh", ""), "zh-Hans", "nope.nope", nil, "nope.nope"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.loc.Tag(); got != tt.tag {
				t.Errorf("Tag() = %q, want %q", got, tt.tag)
			}
			if got := tt.loc.T(tt.key, tt.args...); got != tt.wantMsg {
				t.Errorf("T(%q) = %q, want %q", tt.key, got, tt.wantMsg)
			}
		})
	}
}
