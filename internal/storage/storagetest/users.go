package storagetest

import (
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testUsers(t *testing.T, open OpenFunc) {
	runCases(t, open, []testCase{
		{"round-trips every field", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			// One user with every field set, one with every field at its
			// zero value: a column that always reads back true, or one that
			// is not written at all, fails one of the two.
			full := fullUser("u1", "ada@example.com")
			zero := storage.User{ID: "u2", Email: "bob@example.com"}
			for _, u := range []storage.User{full, zero} {
				must(t, s.CreateUser(ctx, u), "CreateUser")
			}
			for _, u := range []storage.User{full, zero} {
				got, err := s.GetUser(ctx, u.ID)
				must(t, err, "GetUser")
				assertEqual(t, "GetUser", got, u)

				got, err = s.GetUserByEmail(ctx, u.Email)
				must(t, err, "GetUserByEmail")
				assertEqual(t, "GetUserByEmail", got, u)
			}
		}},
		{"unknown user is ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			must(t, s.CreateUser(ctx, fullUser("u1", "ada@example.com")), "CreateUser")
			_, err := s.GetUser(ctx, "u2")
			wantErr(t, err, storage.ErrNotFound, "GetUser(u2)")
			_, err = s.GetUserByEmail(ctx, "bob@example.com")
			wantErr(t, err, storage.ErrNotFound, "GetUserByEmail(bob)")
		}},
		{"duplicate ID is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			first := fullUser("u1", "ada@example.com")
			must(t, s.CreateUser(ctx, first), "CreateUser")
			err := s.CreateUser(ctx, fullUser("u1", "other@example.com"))
			wantErr(t, err, storage.ErrAlreadyExists, "CreateUser(same ID)")
			got, err := s.GetUser(ctx, "u1")
			must(t, err, "GetUser")
			assertEqual(t, "user after failed insert", got, first)
			_, err = s.GetUserByEmail(ctx, "other@example.com")
			wantErr(t, err, storage.ErrNotFound, "GetUserByEmail(other)")
		}},
		{"duplicate email is ErrAlreadyExists", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			must(t, s.CreateUser(ctx, fullUser("u1", "ada@example.com")), "CreateUser")
			err := s.CreateUser(ctx, fullUser("u2", "ada@example.com"))
			wantErr(t, err, storage.ErrAlreadyExists, "CreateUser(same email)")
			_, err = s.GetUser(ctx, "u2")
			wantErr(t, err, storage.ErrNotFound, "GetUser(u2)")
		}},
		{"ListUsers is empty on an empty store", func(t *testing.T, s storage.Store) {
			got, err := s.ListUsers(t.Context())
			must(t, err, "ListUsers")
			if len(got) != 0 {
				t.Fatalf("ListUsers: got %d users, want 0", len(got))
			}
		}},
		{"ListUsers orders by CreatedAt, then ID", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			// Inserted out of order; "a" and "c" share a CreatedAt, so only
			// the ID tie-break orders them; "z" is older than both. The
			// times differ by one microsecond, the storage precision.
			c := fullUser("c", "c@example.com")
			a := fullUser("a", "a@example.com")
			z := fullUser("z", "z@example.com")
			z.CreatedAt = a.CreatedAt.Add(-time.Microsecond)
			for _, u := range []storage.User{c, a, z} {
				must(t, s.CreateUser(ctx, u), "CreateUser")
			}
			got, err := s.ListUsers(ctx)
			must(t, err, "ListUsers")
			assertEqual(t, "ListUsers", got, []storage.User{z, a, c})
		}},
		{"SetUserDisabled sets Disabled and UpdatedAt only", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			u := fullUser("u1", "ada@example.com") // Disabled
			other := fullUser("u2", "bob@example.com")
			must(t, s.CreateUser(ctx, u), "CreateUser")
			must(t, s.CreateUser(ctx, other), "CreateUser")
			for i, disabled := range []bool{false, true, false} {
				now := t0().Add(time.Duration(i+1)*time.Hour + 59)
				must(t, s.SetUserDisabled(ctx, "u1", disabled, now), "SetUserDisabled")
				u.Disabled, u.UpdatedAt = disabled, now
				got, err := s.GetUser(ctx, "u1")
				must(t, err, "GetUser")
				assertEqual(t, "user after SetUserDisabled", got, u)
			}
			got, err := s.GetUser(ctx, "u2")
			must(t, err, "GetUser(u2)")
			assertEqual(t, "other user", got, other)
		}},
		{"SetUserPassword sets PasswordHash and UpdatedAt only", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			u := fullUser("u1", "ada@example.com")
			other := fullUser("u2", "bob@example.com")
			must(t, s.CreateUser(ctx, u), "CreateUser")
			must(t, s.CreateUser(ctx, other), "CreateUser")
			now := t0().Add(3*time.Hour + 61)
			const newHash = "$argon2id$v=19$m=65536,t=3,p=4$bmV3$new"
			must(t, s.SetUserPassword(ctx, "u1", newHash, now), "SetUserPassword")
			u.PasswordHash, u.UpdatedAt = newHash, now
			got, err := s.GetUser(ctx, "u1")
			must(t, err, "GetUser")
			assertEqual(t, "user after SetUserPassword", got, u)
			got, err = s.GetUser(ctx, "u2")
			must(t, err, "GetUser(u2)")
			assertEqual(t, "other user", got, other)
		}},
		{"SetUserDisabled and SetUserPassword of unknown user are ErrNotFound", func(t *testing.T, s storage.Store) {
			ctx := t.Context()
			u := fullUser("u1", "ada@example.com")
			must(t, s.CreateUser(ctx, u), "CreateUser")
			wantErr(t, s.SetUserDisabled(ctx, "u2", false, t0().Add(time.Hour)), storage.ErrNotFound, "SetUserDisabled(u2)")
			wantErr(t, s.SetUserPassword(ctx, "u2", "x", t0().Add(time.Hour)), storage.ErrNotFound, "SetUserPassword(u2)")
			got, err := s.GetUser(ctx, "u1")
			must(t, err, "GetUser")
			assertEqual(t, "other user", got, u)
		}},
	})
}
