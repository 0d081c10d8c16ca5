package storagetest

import (
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testConsents(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			c := storage.Consent{
				UserID: "u1", ClientID: "c1", Scopes: []string{"openid", "email"},
				CreatedAt: t0(), UpdatedAt: t0().Add(time.Minute + 1),
			}
			must(t, s.PutConsent(ctx, c), "PutConsent")
			got, err := s.GetConsent(ctx, "u1", "c1")
			must(t, err, "GetConsent")
			assertEqual(t, "GetConsent", got, c)
		}},
		{"unknown consent is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateUser(ctx, fullUser("u2", "u2@example.com")), "CreateUser")
			must(t, s.CreateClient(ctx, fullClient("c2")), "CreateClient")
			must(t, s.PutConsent(ctx, storage.Consent{UserID: "u1", ClientID: "c1", CreatedAt: t0(), UpdatedAt: t0()}), "PutConsent")
			// Same user, other client; other user, same client.
			_, err := s.GetConsent(ctx, "u1", "c2")
			wantErr(t, err, storage.ErrNotFound, "GetConsent(u1, c2)")
			_, err = s.GetConsent(ctx, "u2", "c1")
			wantErr(t, err, storage.ErrNotFound, "GetConsent(u2, c1)")
		}},
		{"PutConsent replaces scopes and keeps CreatedAt", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			seed(t, s)
			must(t, s.CreateClient(ctx, fullClient("c2")), "CreateClient")
			first := storage.Consent{
				UserID: "u1", ClientID: "c1", Scopes: []string{"openid"},
				CreatedAt: t0(), UpdatedAt: t0(),
			}
			other := storage.Consent{
				UserID: "u1", ClientID: "c2", Scopes: []string{"openid"},
				CreatedAt: t0(), UpdatedAt: t0(),
			}
			must(t, s.PutConsent(ctx, first), "PutConsent")
			must(t, s.PutConsent(ctx, other), "PutConsent")
			second := storage.Consent{
				UserID: "u1", ClientID: "c1", Scopes: []string{"openid", "profile", "offline_access"},
				CreatedAt: t0().Add(24 * time.Hour), UpdatedAt: t0().Add(24*time.Hour + 5),
			}
			must(t, s.PutConsent(ctx, second), "PutConsent again")
			got, err := s.GetConsent(ctx, "u1", "c1")
			must(t, err, "GetConsent")
			want := second
			want.CreatedAt = first.CreatedAt
			assertEqual(t, "replaced consent", got, want)
			got, err = s.GetConsent(ctx, "u1", "c2")
			must(t, err, "GetConsent(other)")
			assertEqual(t, "other consent", got, other)
		}},
	})
}
