package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2/clientcredentials"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func newTestKEK(t *testing.T) keys.KEK {
	t.Helper()
	k, err := keys.GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seedKeys creates what a server's first start creates (an active and a
// next key for RS256 and ES256), two days ago, so that a rotation without
// --force is allowed.
func seedKeys(t *testing.T, st storage.Store, kek keys.KEK) {
	t.Helper()
	past := time.Now().Add(-48 * time.Hour)
	m := keys.NewManager(st, kek, keys.Options{Now: func() time.Time { return past }, Logger: discardLogger()})
	if err := m.Init(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func listKeysJSON(t *testing.T, args []string) []keyJSON {
	t.Helper()
	r := idp(t, "", nil, append([]string{"keys", "list", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("keys list: %d %s", r.code, r.stderr)
	}
	var out []keyJSON
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("keys list --json: %v\n%s", err, r.stdout)
	}
	return out
}

func keyWith(t *testing.T, list []keyJSON, alg, state string) keyJSON {
	t.Helper()
	i := slices.IndexFunc(list, func(k keyJSON) bool { return k.Algorithm == alg && k.State == state })
	if i < 0 {
		t.Fatalf("no %s %s key in %+v", state, alg, list)
	}
	return list[i]
}

func TestKeysCLI(t *testing.T) {
	for _, b := range cliBackends(t) {
		t.Run(b.name, func(t *testing.T) {
			kek := newTestKEK(t)
			withKEK := map[string]string{"IDP_KEY_ENCRYPTION_KEY": kek.Encode()}
			seedKeys(t, b.store, kek)

			// list needs no key-encryption key.
			r := idp(t, "", nil, append([]string{"keys", "list"}, b.args...)...)
			if r.code != 0 || strings.Count(r.stdout, "\n") != 5 || !strings.Contains(r.stdout, "may sign from") || !strings.Contains(r.stdout, "rotation due") {
				t.Errorf("keys list: %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			list := listKeysJSON(t, b.args)
			active, next := keyWith(t, list, "ES256", "active"), keyWith(t, list, "ES256", "next")
			if next.Due == nil || !next.Due.Equal(next.CreatedAt.Add(24*time.Hour)) {
				t.Errorf("next key due %v, want created + 24h", next.Due)
			}

			// The other commands need it, and refuse a wrong one before
			// creating anything.
			if r := idp(t, "", map[string]string{"IDP_KEY_ENCRYPTION_KEY": ""}, append([]string{"keys", "rotate"}, b.args...)...); r.code != 2 {
				t.Errorf("rotate without a key-encryption key: %d %s", r.code, r.stderr)
			}
			wrong := map[string]string{"IDP_KEY_ENCRYPTION_KEY": newTestKEK(t).Encode()}
			if r := idp(t, "", wrong, append([]string{"keys", "rotate", "--force"}, b.args...)...); r.code != 1 || !strings.Contains(r.stderr, "refusing") {
				t.Errorf("rotate with the wrong key-encryption key: %d %s", r.code, r.stderr)
			}
			if n := len(listKeysJSON(t, b.args)); n != 4 {
				t.Fatalf("%d keys after a refused rotation, want 4", n)
			}

			r = idpEnv(t, withKEK, append([]string{"keys", "rotate", "--alg", "ES256"}, b.args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "ES256 now signs with "+next.KID) || !strings.Contains(r.stdout, active.KID+" retired") {
				t.Fatalf("keys rotate: %d\n%s%s", r.code, r.stdout, r.stderr)
			}
			list = listKeysJSON(t, b.args)
			if keyWith(t, list, "ES256", "active").KID != next.KID || keyWith(t, list, "ES256", "retired").KID != active.KID {
				t.Errorf("after rotate: %+v", list)
			}
			// The fresh next key is minutes old: refused without --force.
			r = idpEnv(t, withKEK, append([]string{"keys", "rotate", "--alg", "ES256"}, b.args...)...)
			if r.code != 1 || !strings.Contains(r.stderr, "--force") {
				t.Errorf("early rotate: %d %s", r.code, r.stderr)
			}
			fresh := keyWith(t, list, "ES256", "next")
			r = idpEnv(t, withKEK, append([]string{"keys", "rotate", "--alg", "ES256", "--force"}, b.args...)...)
			if r.code != 0 || !strings.Contains(r.stdout, "ES256 now signs with "+fresh.KID) {
				t.Errorf("forced rotate: %d %s %s", r.code, r.stdout, r.stderr)
			}

			// Revoke the RS256 active key: the output tells the operator
			// what happens to its tokens.
			rsActive, rsNext := keyWith(t, list, "RS256", "active"), keyWith(t, list, "RS256", "next")
			r = idpEnv(t, withKEK, append([]string{"keys", "revoke", rsActive.KID}, b.args...)...)
			for _, want := range []string{"Revoked " + rsActive.KID, "RS256 now signs with " + rsNext.KID, "Gatehouse rejects them at once", "10m0s", "Refresh tokens are not signed"} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("revoke output lacks %q:\n%s%s", want, r.stdout, r.stderr)
				}
			}
			list = listKeysJSON(t, b.args)
			if k := list[slices.IndexFunc(list, func(k keyJSON) bool { return k.KID == rsActive.KID })]; k.State != "revoked" || k.RevokedAt == nil {
				t.Errorf("revoked key listed as %+v", k)
			}
			if r := idpEnv(t, withKEK, append([]string{"keys", "revoke", rsActive.KID}, b.args...)...); r.code != 1 || !strings.Contains(r.stderr, "already revoked") {
				t.Errorf("revoke twice: %d %s", r.code, r.stderr)
			}
			if r := idpEnv(t, withKEK, append([]string{"keys", "revoke", "nope"}, b.args...)...); r.code != 1 || !strings.Contains(r.stderr, "no signing key with kid nope") {
				t.Errorf("revoke unknown: %d %s", r.code, r.stderr)
			}
			if r := idpEnv(t, withKEK, append([]string{"keys", "revoke"}, b.args...)...); r.code != 2 {
				t.Errorf("revoke without KID: %d", r.code)
			}

			// Rewrap under a new key-encryption key, the old one additional.
			newK := newTestKEK(t)
			r = idpEnv(t, map[string]string{"IDP_KEY_ENCRYPTION_KEY": newK.Encode(), "IDP_ADDITIONAL_KEY_ENCRYPTION_KEYS": kek.Encode()},
				append([]string{"keys", "rewrap"}, b.args...)...)
			n := len(listKeysJSON(t, b.args))
			if r.code != 0 || !strings.Contains(r.stdout, "re-encrypted "+plural(int64(n), "key")) {
				t.Fatalf("rewrap: %d %s %s", r.code, r.stdout, r.stderr)
			}
			if err := keys.NewManager(b.store, newK, keys.Options{Logger: discardLogger()}).Init(t.Context()); err != nil {
				t.Errorf("the new key-encryption key alone does not open the rewrapped keys: %v", err)
			}
		})
	}
}

// idpEnv is idp without stdin.
func idpEnv(t *testing.T, environ map[string]string, args ...string) result {
	t.Helper()
	return idp(t, "", environ, args...)
}

// TestDevSeesCLIRotation: on SQLite there are no notifications; a running
// idp dev notices a rotation made with the CLI by polling the change
// counter, and signs with the new key.
func TestDevSeesCLIRotation(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	startServer(t, nil, "Discovery:", "dev", "--listen", "127.0.0.1:"+port, "--data-dir", dir, "--signing-algs", "RS256")
	issuer := "http://localhost:" + port
	reg := idp(t, `{"grant_types":["client_credentials"],"scope":"api"}`, nil, "clients", "create", "--data-dir", dir)
	var c struct {
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.Unmarshal([]byte(reg.stdout), &c); err != nil {
		t.Fatal(reg.stderr, err)
	}
	cc := clientcredentials.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, TokenURL: issuer + "/token", Scopes: []string{"api"}}
	kidNow := func() string {
		tok, err := cc.Token(context.WithoutCancel(t.Context()))
		if err != nil {
			t.Fatal(err)
		}
		header, _, _ := strings.Cut(tok.AccessToken, ".")
		raw, _ := base64.RawURLEncoding.DecodeString(header)
		var h struct{ Kid string }
		_ = json.Unmarshal(raw, &h)
		return h.Kid
	}
	before := kidNow()
	if _, err := os.Stat(filepath.Join(dir, "key-encryption-key")); err != nil {
		t.Fatal(err)
	}
	r := idp(t, "", nil, "keys", "rotate", "--force", "--data-dir", dir)
	if r.code != 0 {
		t.Fatalf("keys rotate: %d %s", r.code, r.stderr)
	}
	rotated := time.Now()
	// Wait (bounded) for the server to see it; how long it took is logged,
	// not asserted (a timed assertion would be flaky on a busy machine).
	deadline := time.Now().Add(15 * time.Second)
	for kidNow() == before {
		if time.Now().After(deadline) {
			t.Fatal("the running server still signs with the old key 15s after the rotation")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("the running server signed with the new key %v after the CLI rotation", time.Since(rotated).Round(time.Millisecond))
	var jwks struct{ Keys []map[string]any }
	getJSON(t, issuer+"/jwks", &jwks)
	if len(jwks.Keys) != 3 { // retired, active, next
		t.Errorf("JWKS has %d keys after rotation, want 3", len(jwks.Keys))
	}
	if code := getStatus(t, issuer+"/healthz"); code != http.StatusOK {
		t.Errorf("healthz = %d", code)
	}
}
