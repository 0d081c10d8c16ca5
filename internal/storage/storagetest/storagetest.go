package storagetest

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// OpenFunc returns a fresh, empty, migrated store for one test, and arranges
// (with t.Cleanup) for it to be closed and thrown away afterwards.
type OpenFunc = func(t *testing.T) storage.Store

// Run runs the conformance suite against the backend that open returns.
// Every subtest opens its own store, so the subtests run in parallel.
func Run(t *testing.T, open OpenFunc) {
	groups := []struct {
		name string
		run  func(*testing.T, OpenFunc)
	}{
		{"Ping", testPing},
		{"Users", testUsers},
		{"Clients", testClients},
		{"Sessions", testSessions},
		{"SessionControl", testSessionControl},
		{"AuthRequests", testAuthRequests},
		{"AuthCodes", testAuthCodes},
		{"Grants", testGrants},
		{"Consents", testConsents},
		{"SigningKeys", testSigningKeys},
		{"RefreshTokens", testRefreshTokens},
		{"AccessTokens", testAccessTokens},
		{"LoginThrottles", testLoginThrottles},
		{"DeleteExpired", testDeleteExpired},
		{"BackchannelLogouts", testBackchannelLogouts},
		{"Audit", testAudit},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			t.Parallel()
			g.run(t, open)
		})
	}
}

// testCase is one named check against a fresh store.
type testCase struct {
	name string
	run  func(t *testing.T, s storage.Store)
}

// runCases runs each case as a parallel subtest on its own store.
func runCases(t *testing.T, open OpenFunc, cases []testCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, open(t))
		})
	}
}

func testPing(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"reachable", func(t *testing.T, s storage.Store) {
			if err := s.Ping(t.Context()); err != nil {
				t.Fatalf("Ping: %v", err)
			}
		}},
	})
}

// t0 is the suite's reference time. It has nanoseconds, which storage must
// truncate to microseconds, and a zone that is not UTC, which storage must
// convert, so that every round-trip checks both.
func t0() time.Time {
	return time.Date(2031, time.May, 6, 7, 8, 9, 123456789, time.FixedZone("UTC+5:30", 5*3600+30*60))
}

// ptr returns a pointer to a copy of v.
func ptr[T any](v T) *T { return &v }

// hash stands in for the SHA-256 hashes callers store.
func hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// must fails the test at once if err is not nil.
func must(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// wantErr fails the test unless errors.Is(err, target).
func wantErr(t *testing.T, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", what, err, target)
	}
}

// assertEqual fails the test if got and want differ under the storage
// round-trip rules (see diff).
func assertEqual(t *testing.T, what string, got, want any) {
	t.Helper()
	if d := diff(got, want); d != "" {
		t.Errorf("%s: got != want:\n%s", what, d)
	}
}

var timeType = reflect.TypeFor[time.Time]()

// diff compares got (read back from storage) with want (what was written)
// the way package storage promises round-trips: times equal want truncated
// to the microsecond and come back in UTC; nil and empty slices are equal;
// nil and non-nil pointers are not. It returns "" if they match, otherwise
// one line per difference.
func diff(got, want any) string {
	var out []string
	walk(&out, "", reflect.ValueOf(got), reflect.ValueOf(want))
	return strings.Join(out, "\n")
}

func walk(out *[]string, path string, g, w reflect.Value) {
	if g.Type() != w.Type() {
		*out = append(*out, fmt.Sprintf("%s: got type %s, want %s", path, g.Type(), w.Type()))
		return
	}
	if g.Type() == timeType {
		gt := g.Interface().(time.Time)
		wt := w.Interface().(time.Time).Truncate(time.Microsecond)
		if !gt.Equal(wt) {
			*out = append(*out, fmt.Sprintf("%s: got %s, want %s", path,
				gt.Format(time.RFC3339Nano), wt.UTC().Format(time.RFC3339Nano)))
		}
		if gt.Location() != time.UTC {
			*out = append(*out, fmt.Sprintf("%s: got zone %s, want UTC", path, gt.Location()))
		}
		return
	}
	switch g.Kind() {
	case reflect.Pointer:
		switch {
		case g.IsNil() && w.IsNil():
		case g.IsNil():
			*out = append(*out, fmt.Sprintf("%s: got nil, want %v", path, w.Elem()))
		case w.IsNil():
			*out = append(*out, fmt.Sprintf("%s: got %v, want nil", path, g.Elem()))
		default:
			walk(out, path, g.Elem(), w.Elem())
		}
	case reflect.Slice:
		if g.Len() != w.Len() {
			*out = append(*out, fmt.Sprintf("%s: got %v (len %d), want %v (len %d)", path, g, g.Len(), w, w.Len()))
			return
		}
		for i := range g.Len() {
			walk(out, fmt.Sprintf("%s[%d]", path, i), g.Index(i), w.Index(i))
		}
	case reflect.Struct:
		for i := range g.NumField() {
			if !g.Type().Field(i).IsExported() {
				continue
			}
			walk(out, path+"."+g.Type().Field(i).Name, g.Field(i), w.Field(i))
		}
	default:
		if !reflect.DeepEqual(g.Interface(), w.Interface()) {
			*out = append(*out, fmt.Sprintf("%s: got %#v, want %#v", path, g.Interface(), w.Interface()))
		}
	}
}

// hammerTimeout bounds a hammer: a backend that deadlocks under
// concurrency (say, a transaction waiting for a second connection from an
// exhausted pool) fails the test instead of hanging it.
const hammerTimeout = 30 * time.Second

// hammer calls f(ctx, i) from n goroutines released at the same moment,
// and returns each call's error by i.
func hammer(t *testing.T, n int, f func(ctx context.Context, i int) error) []error {
	ctx, cancel := context.WithTimeout(t.Context(), hammerTimeout)
	defer cancel()
	errs := make([]error, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			<-start
			errs[i] = f(ctx, i)
		})
	}
	close(start)
	wg.Wait()
	return errs
}

// checkOneWinner fails the test unless exactly one of errs is nil and every
// other one is loser. It returns the winner's index.
func checkOneWinner(t *testing.T, errs []error, loser error) int {
	t.Helper()
	winner := -1
	var wins int
	for i, err := range errs {
		switch {
		case err == nil:
			wins++
			winner = i
		case !errors.Is(err, loser):
			t.Errorf("call %d: got error %v, want nil or %v", i, err, loser)
		}
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent calls succeeded, want exactly 1", wins, len(errs))
	}
	return winner
}

// Fixtures. Every field is set to something distinguishable, so a column
// that is dropped, swapped or mis-scanned shows up in a round-trip.

func fullUser(id, email string) storage.User {
	return storage.User{
		ID:            id,
		Email:         email,
		EmailVerified: true,
		Name:          "Ada " + id,
		PasswordHash:  "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$" + id,
		Disabled:      true,
		CreatedAt:     t0(),
		UpdatedAt:     t0().Add(time.Hour + 1),
	}
}

func fullClient(id string) storage.Client {
	return storage.Client{
		ID:         id,
		SecretHash: hash("secret of " + id),
		Metadata: storage.ClientMetadata{
			ClientName:                       "App " + id,
			RedirectURIs:                     []string{"https://" + id + ".example/cb", "http://127.0.0.1/cb"},
			PostLogoutRedirectURIs:           []string{"https://" + id + ".example/bye"},
			GrantTypes:                       []string{"authorization_code", "refresh_token"},
			ResponseTypes:                    []string{"code"},
			TokenEndpointAuthMethod:          "client_secret_basic",
			Scope:                            "openid email offline_access",
			ApplicationType:                  "web",
			ClientURI:                        "https://" + id + ".example/",
			LogoURI:                          "https://" + id + ".example/logo.png",
			PolicyURI:                        "https://" + id + ".example/policy",
			TosURI:                           "https://" + id + ".example/tos",
			Contacts:                         []string{"ops@" + id + ".example"},
			SkipConsent:                      true,
			BackchannelLogoutURI:             "https://" + id + ".example/backchannel",
			BackchannelLogoutSessionRequired: true,
			MaxSessionsPerUser:               ptr(3),
			SessionLimitAction:               "refuse",
		},
		CreatedAt: t0(),
		UpdatedAt: t0().Add(2*time.Hour + 3),
	}
}

func fullSession(id, secret, userID string) storage.Session {
	return storage.Session{
		ID:         id,
		SecretHash: hash(secret),
		UserID:     userID,
		AuthTime:   t0().Add(-time.Minute - 7),
		AMR:        []string{"pwd", "otp"},
		IP:         "2001:db8::1",
		UserAgent:  "Mozilla/5.0 (" + id + ")",
		CreatedAt:  t0(),
		LastSeenAt: t0().Add(time.Second + 9),
		ExpiresAt:  t0().Add(7 * 24 * time.Hour),
	}
}

func fullAuthRequest(id, clientID string) storage.AuthRequest {
	return storage.AuthRequest{
		IDHash:              hash(id),
		ClientID:            clientID,
		RedirectURI:         "https://" + clientID + ".example/cb",
		Scopes:              []string{"openid", "profile", "email"},
		State:               "state-" + id,
		Nonce:               "nonce-" + id,
		CodeChallenge:       "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login", "consent"},
		MaxAge:              ptr(300),
		LoginHint:           "ada@example.com",
		UILocales:           "zh-Hans en",
		SessionID:           "sid-" + id,
		LoginAt:             ptr(t0().Add(30*time.Second + 5)),
		CreatedAt:           t0(),
		ExpiresAt:           t0().Add(10 * time.Minute),
	}
}

func fullAuthCode(code, clientID, userID, grantID string) storage.AuthCode {
	return storage.AuthCode{
		CodeHash:            hash(code),
		ClientID:            clientID,
		UserID:              userID,
		SessionID:           "sid-" + code,
		GrantID:             grantID,
		RedirectURI:         "https://" + clientID + ".example/cb",
		Scopes:              []string{"openid", "offline_access"},
		Nonce:               "nonce-" + code,
		CodeChallenge:       "challenge-" + code,
		CodeChallengeMethod: "S256",
		AuthTime:            t0().Add(-2*time.Minute - 11),
		AMR:                 []string{"pwd"},
		CreatedAt:           t0(),
		ExpiresAt:           t0().Add(time.Minute),
	}
}

// grantFor is the grant a token endpoint would create when redeeming c.
func grantFor(c storage.AuthCode) storage.Grant {
	return storage.Grant{
		ID:        c.GrantID,
		UserID:    c.UserID,
		ClientID:  c.ClientID,
		SessionID: c.SessionID,
		Scopes:    c.Scopes,
		CreatedAt: t0().Add(5*time.Second + 13),
	}
}

// fullGrant is a grant of user to client made in login session sessionID
// (bound to it: not Offline).
func fullGrant(id, clientID, userID, sessionID string) storage.Grant {
	return storage.Grant{
		ID:        id,
		UserID:    userID,
		ClientID:  clientID,
		SessionID: sessionID,
		Scopes:    []string{"openid", "email", "offline_access"},
		CreatedAt: t0().Add(5*time.Second + 13),
	}
}

// fullRefreshToken is the first, unspent refresh token of g's family.
func fullRefreshToken(token string, g storage.Grant) storage.RefreshToken {
	return storage.RefreshToken{
		TokenHash:         hash(token),
		GrantID:           g.ID,
		ClientID:          g.ClientID,
		UserID:            g.UserID,
		Scopes:            []string{"openid", "email", "offline_access"},
		CreatedAt:         t0().Add(6*time.Second + 17),
		ExpiresAt:         t0().Add(14*24*time.Hour + 19),
		AbsoluteExpiresAt: t0().Add(90*24*time.Hour + 23),
	}
}

// successor is the token a rotation of rt at now adds: a new hash and idle
// expiry, the family's absolute expiry, unspent.
func successor(rt storage.RefreshToken, token string, now time.Time) storage.RefreshToken {
	next := rt
	next.TokenHash = hash(token)
	next.CreatedAt = now
	next.ExpiresAt = now.Add(14*24*time.Hour + 7)
	next.UsedAt, next.SuccessorHash = nil, nil
	return next
}

// fullAccessToken is an opaque access token issued under g.
func fullAccessToken(token string, g storage.Grant) storage.AccessToken {
	return storage.AccessToken{
		TokenHash: hash(token),
		GrantID:   g.ID,
		ClientID:  g.ClientID,
		Subject:   g.UserID,
		Scopes:    []string{"openid", "email"},
		Audience:  []string{"https://api.example/", "urn:gatehouse:userinfo"},
		CreatedAt: t0().Add(6*time.Second + 29),
		ExpiresAt: t0().Add(10*time.Minute + 31),
	}
}

// createGrant stores g, with the tokens in issued, the only way the Store
// offers: by redeeming a code issued for it.
func createGrant(t *testing.T, s storage.Store, g storage.Grant, issued storage.IssuedTokens) {
	t.Helper()
	c := fullAuthCode("code-for-"+g.ID, g.ClientID, g.UserID, g.ID)
	c.SessionID = g.SessionID
	must(t, s.CreateAuthCode(t.Context(), c), "CreateAuthCode")
	_, err := s.RedeemAuthCode(t.Context(), c.CodeHash, t0(), g, issued)
	must(t, err, "RedeemAuthCode for grant "+g.ID)
}

// assertGrant fails the test unless the stored grant equals want.
func assertGrant(t *testing.T, s storage.Store, want storage.Grant) {
	t.Helper()
	got, err := s.GetGrant(t.Context(), want.ID)
	must(t, err, "GetGrant("+want.ID+")")
	assertEqual(t, "grant "+want.ID, got, want)
}

// assertRefreshToken fails the test unless the stored token equals want.
func assertRefreshToken(t *testing.T, s storage.Store, what string, want storage.RefreshToken) {
	t.Helper()
	got, err := s.GetRefreshToken(t.Context(), want.TokenHash)
	must(t, err, "GetRefreshToken("+what+")")
	assertEqual(t, what, got, want)
}

// assertAccessToken fails the test unless the stored token equals want.
func assertAccessToken(t *testing.T, s storage.Store, what string, want storage.AccessToken) {
	t.Helper()
	got, err := s.GetAccessToken(t.Context(), want.TokenHash)
	must(t, err, "GetAccessToken("+what+")")
	assertEqual(t, what, got, want)
}

// assertNoRefreshToken fails the test unless no refresh token has this hash.
func assertNoRefreshToken(t *testing.T, s storage.Store, what string, tokenHash []byte) {
	t.Helper()
	_, err := s.GetRefreshToken(t.Context(), tokenHash)
	wantErr(t, err, storage.ErrNotFound, "GetRefreshToken("+what+")")
}

// assertNoAccessToken fails the test unless no access token has this hash.
func assertNoAccessToken(t *testing.T, s storage.Store, what string, tokenHash []byte) {
	t.Helper()
	_, err := s.GetAccessToken(t.Context(), tokenHash)
	wantErr(t, err, storage.ErrNotFound, "GetAccessToken("+what+")")
}

// seed creates the user "u1" and the client "c1" that other rows refer to.
func seed(t *testing.T, s storage.Store) {
	t.Helper()
	must(t, s.CreateUser(t.Context(), fullUser("u1", "u1@example.com")), "CreateUser")
	must(t, s.CreateClient(t.Context(), fullClient("c1")), "CreateClient")
}
