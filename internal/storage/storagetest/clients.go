package storagetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testClients(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			confidential := fullClient("c1")
			public := storage.Client{
				ID:        "c2",
				Metadata:  storage.ClientMetadata{RedirectURIs: []string{"http://127.0.0.1/cb"}},
				CreatedAt: t0(),
				UpdatedAt: t0(),
			}
			for _, c := range []storage.Client{confidential, public} {
				must(t, s.CreateClient(ctx, c), "CreateClient")
			}
			for _, c := range []storage.Client{confidential, public} {
				got, err := s.GetClient(ctx, c.ID)
				must(t, err, "GetClient")
				assertEqual(t, "GetClient", got, c)
			}
		}},
		{"public client comes back with a nil SecretHash", func(t *testing.T, s storage.Store) {
			// storage.Client documents nil, not empty, for public clients;
			// callers may test SecretHash == nil.
			ctx := t.Context()
			must(t, s.CreateClient(ctx, storage.Client{ID: "pub", CreatedAt: t0(), UpdatedAt: t0()}), "CreateClient")
			got, err := s.GetClient(ctx, "pub")
			must(t, err, "GetClient")
			if got.SecretHash != nil {
				t.Fatalf("SecretHash = %#v, want nil", got.SecretHash)
			}
		}},
		{"unknown client is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			must(t, s.CreateClient(ctx, fullClient("c1")), "CreateClient")
			_, err := s.GetClient(ctx, "c2")
			wantErr(t, err, storage.ErrNotFound, "GetClient(c2)")
		}},
		{"duplicate ID is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			first := fullClient("c1")
			must(t, s.CreateClient(ctx, first), "CreateClient")
			second := fullClient("c1")
			second.Metadata.ClientName = "impostor"
			wantErr(t, s.CreateClient(ctx, second), storage.ErrAlreadyExists, "CreateClient(same ID)")
			got, err := s.GetClient(ctx, "c1")
			must(t, err, "GetClient")
			assertEqual(t, "client after failed insert", got, first)
		}},
		{"ListClients is empty on an empty store", func(t *testing.T, s storage.Store) {
			got, err := s.ListClients(t.Context())
			must(t, err, "ListClients")
			if len(got) != 0 {
				t.Fatalf("ListClients: got %d clients, want 0", len(got))
			}
		}},
		{"ListClients orders by CreatedAt, then ID", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			c, a, z := fullClient("c"), fullClient("a"), fullClient("z")
			z.CreatedAt = a.CreatedAt.Add(-time.Microsecond)
			for _, cl := range []storage.Client{c, a, z} {
				must(t, s.CreateClient(ctx, cl), "CreateClient")
			}
			got, err := s.ListClients(ctx)
			must(t, err, "ListClients")
			assertEqual(t, "ListClients", got, []storage.Client{z, a, c})
		}},
		{"DeleteClient of unknown client is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			must(t, s.CreateClient(ctx, fullClient("c1")), "CreateClient")
			wantErr(t, s.DeleteClient(ctx, "c2"), storage.ErrNotFound, "DeleteClient(c2)")
			_, err := s.GetClient(ctx, "c1")
			must(t, err, "GetClient(c1) after deleting another client")
		}},
		{"DeleteClient removes everything the client could still redeem", testDeleteClientCascade},
		{"ClientsVersion changes when a client is created or deleted, not when read", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			version := func(what string) int64 {
				t.Helper()
				v, err := s.ClientsVersion(ctx)
				must(t, err, "ClientsVersion "+what)
				return v
			}
			seen := map[int64]string{}
			changed := func(what string) {
				t.Helper()
				v := version(what)
				if before, ok := seen[v]; ok {
					t.Fatalf("ClientsVersion %s = %d, the same as %s", what, v, before)
				}
				seen[v] = what
			}
			changed("on an empty store")
			must(t, s.CreateClient(ctx, fullClient("c1")), "CreateClient(c1)")
			changed("after creating c1")
			v := version("again")
			_, err := s.GetClient(ctx, "c1")
			must(t, err, "GetClient")
			_, err = s.ListClients(ctx)
			must(t, err, "ListClients")
			if got := version("after reads"); got != v {
				t.Fatalf("ClientsVersion after reads = %d, want %d", got, v)
			}
			must(t, s.CreateClient(ctx, fullClient("c2")), "CreateClient(c2)")
			changed("after creating c2")
			must(t, s.DeleteClient(ctx, "c1"), "DeleteClient(c1)")
			changed("after deleting c1")
			must(t, s.DeleteClient(ctx, "c2"), "DeleteClient(c2)")
			changed("after deleting c2 (no clients again)")
		}},
		{"CreateClient and DeleteClient from 20 goroutines all succeed", func(t *testing.T, s storage.Store) {
			// Every change bumps one counter: concurrent changes must queue
			// on it, not fail or deadlock.
			ctx := t.Context()
			for i := range 10 {
				must(t, s.CreateClient(ctx, fullClient(fmt.Sprintf("old-%02d", i))), "CreateClient")
			}
			before, err := s.ClientsVersion(ctx)
			must(t, err, "ClientsVersion")
			errs := hammer(t, 20, func(ctx context.Context, i int) error {
				if i%2 == 0 {
					return s.CreateClient(ctx, fullClient(fmt.Sprintf("new-%02d", i)))
				}
				return s.DeleteClient(ctx, fmt.Sprintf("old-%02d", i/2))
			})
			for i, err := range errs {
				must(t, err, fmt.Sprintf("call %d", i))
			}
			clients, err := s.ListClients(ctx)
			must(t, err, "ListClients")
			if len(clients) != 10 {
				t.Errorf("ListClients: %d clients, want 10", len(clients))
			}
			after, err := s.ClientsVersion(ctx)
			must(t, err, "ClientsVersion")
			if after == before {
				t.Errorf("ClientsVersion = %d after 20 changes, unchanged", after)
			}
		}},
	})
}

// testDeleteClientCascade gives two clients one of everything, deletes one,
// and checks that exactly its rows are gone.
func testDeleteClientCascade(t *testing.T, s storage.Store) {
	ctx := t.Context()
	must(t, s.CreateUser(ctx, fullUser("u1", "u1@example.com")), "CreateUser")
	type rows struct {
		req     storage.AuthRequest
		used    storage.AuthCode // redeemed, so its grant exists
		pending storage.AuthCode // not yet redeemed
		spent   storage.RefreshToken
		live    storage.RefreshToken // spent's successor
		at      storage.AccessToken  // issued under the grant
		machine storage.AccessToken  // client credentials: no grant
	}
	made := map[string]rows{}
	for _, id := range []string{"doomed", "kept"} {
		must(t, s.CreateClient(ctx, fullClient(id)), "CreateClient")
		must(t, s.PutConsent(ctx, storage.Consent{
			UserID: "u1", ClientID: id, Scopes: []string{"openid"}, CreatedAt: t0(), UpdatedAt: t0(),
		}), "PutConsent")
		r := rows{
			req:     fullAuthRequest("req-"+id, id),
			used:    fullAuthCode("used-"+id, id, "u1", "grant-"+id),
			pending: fullAuthCode("pending-"+id, id, "u1", "grant2-"+id),
		}
		g := grantFor(r.used)
		r.spent = fullRefreshToken("rt-"+id, g)
		r.live = successor(r.spent, "rt2-"+id, t0().Add(time.Hour))
		r.at = fullAccessToken("at-"+id, g)
		r.machine = storage.AccessToken{TokenHash: hash("machine-" + id), ClientID: id, Subject: id, CreatedAt: t0(), ExpiresAt: t0()}
		must(t, s.CreateAuthRequest(ctx, r.req), "CreateAuthRequest")
		must(t, s.CreateAuthCode(ctx, r.used), "CreateAuthCode")
		must(t, s.CreateAuthCode(ctx, r.pending), "CreateAuthCode")
		_, err := s.RedeemAuthCode(ctx, r.used.CodeHash, t0(), g, storage.IssuedTokens{RefreshToken: &r.spent, AccessToken: &r.at})
		must(t, err, "RedeemAuthCode")
		must(t, s.RotateRefreshToken(ctx, r.spent.TokenHash, t0().Add(time.Hour), r.live, nil), "RotateRefreshToken")
		must(t, s.CreateAccessToken(ctx, r.machine), "CreateAccessToken")
		made[id] = r
	}

	must(t, s.DeleteClient(ctx, "doomed"), "DeleteClient")

	// found reports whether each kind of row of client id is still there.
	found := func(id string) map[string]bool {
		r := made[id]
		seen := map[string]bool{}
		check := func(what string, err error) {
			switch {
			case err == nil:
				seen[what] = true
			case errors.Is(err, storage.ErrNotFound):
			default:
				t.Fatalf("%s of %s: %v", what, id, err)
			}
		}
		_, err := s.GetClient(ctx, id)
		check("client", err)
		_, err = s.GetConsent(ctx, "u1", id)
		check("consent", err)
		_, err = s.GetAuthRequest(ctx, r.req.IDHash, t0())
		check("auth request", err)
		_, err = s.GetAuthCode(ctx, r.used.CodeHash)
		check("used code", err)
		_, err = s.GetAuthCode(ctx, r.pending.CodeHash)
		check("pending code", err)
		_, err = s.GetGrant(ctx, r.used.GrantID)
		check("grant", err)
		_, err = s.GetRefreshToken(ctx, r.spent.TokenHash)
		check("spent refresh token", err)
		_, err = s.GetRefreshToken(ctx, r.live.TokenHash)
		check("live refresh token", err)
		_, err = s.GetAccessToken(ctx, r.at.TokenHash)
		check("access token", err)
		_, err = s.GetAccessToken(ctx, r.machine.TokenHash)
		check("machine access token", err)
		return seen
	}
	all := []string{"client", "consent", "auth request", "used code", "pending code", "grant",
		"spent refresh token", "live refresh token", "access token", "machine access token"}
	gone, kept := found("doomed"), found("kept")
	for _, what := range all {
		if gone[what] {
			t.Errorf("deleted client's %s is still there", what)
		}
		if !kept[what] {
			t.Errorf("other client's %s was deleted too", what)
		}
	}
	// The user is not the client's to delete.
	_, err := s.GetUser(ctx, "u1")
	must(t, err, "GetUser after DeleteClient")

	wantErr(t, s.DeleteClient(ctx, "doomed"), storage.ErrNotFound, "DeleteClient twice")
}
