package postgres_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
	"github.com/gatehouse-idp/gatehouse/internal/storage/pgtest"
)

// TestMigrateUpgradesVersion1Database is a database in the field: it has
// 00001 and data, and the new release migrates it.
func TestMigrateUpgradesVersion1Database(t *testing.T) {
	ctx := t.Context()
	db := open(t, pgtest.NewEmptyDatabaseURL(t))
	if err := db.MigrateTo(ctx, 1); err != nil {
		t.Fatalf("MigrateTo(1): %v", err)
	}
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(st) < 2 || !st[0].Applied || slices.ContainsFunc(st[1:], func(m storage.MigrationStatus) bool { return m.Applied }) {
		t.Fatalf("MigrationStatus after MigrateTo(1) = %+v, want 00001 applied and no other", st)
	}

	// Rows as release 1 wrote them.
	created := time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)
	revoked := created.Add(time.Hour)
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{`INSERT INTO users (id, email, created_at, updated_at) VALUES ('u1', 'u1@example.com', $1, $1)`, []any{created}},
		{`INSERT INTO clients (id, created_at, updated_at) VALUES ('c1', $1, $1)`, []any{created}},
		{`INSERT INTO sessions (id, secret_hash, user_id, auth_time, created_at, last_seen_at, expires_at)
		  VALUES ('s1', '\x01', 'u1', $1, $1, $1, $1)`, []any{created}},
		{`INSERT INTO grants (id, user_id, client_id, session_id, scopes, created_at)
		  VALUES ('g1', 'u1', 'c1', 's1', '{openid,email}', $1)`, []any{created}},
		{`INSERT INTO grants (id, user_id, client_id, created_at, revoked_at)
		  VALUES ('g2', 'u1', 'c1', $1, $2)`, []any{created, revoked}},
	} {
		if _, err := db.Pool().Exec(ctx, q.sql, q.args...); err != nil {
			t.Fatalf("%s: %v", q.sql, err)
		}
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	want := map[string]storage.Grant{
		"g1": {ID: "g1", UserID: "u1", ClientID: "c1", SessionID: "s1", Offline: false,
			Scopes: []string{"openid", "email"}, CreatedAt: created},
		"g2": {ID: "g2", UserID: "u1", ClientID: "c1", Offline: false, CreatedAt: created, RevokedAt: &revoked},
	}
	for id, w := range want {
		got, err := db.GetGrant(ctx, id)
		if err != nil {
			t.Fatalf("GetGrant(%s) after upgrade: %v", id, err)
		}
		if got.ID != w.ID || got.UserID != w.UserID || got.ClientID != w.ClientID || got.SessionID != w.SessionID ||
			got.Offline != w.Offline || len(got.Scopes) != len(w.Scopes) || !got.CreatedAt.Equal(w.CreatedAt) ||
			(got.RevokedAt == nil) != (w.RevokedAt == nil) || (got.RevokedAt != nil && !got.RevokedAt.Equal(*w.RevokedAt)) {
			t.Errorf("GetGrant(%s) after upgrade = %+v, want %+v", id, got, w)
		}
	}

	// An existing grant is session-bound: ending its session revokes it.
	end := created.Add(2 * time.Hour)
	if err := db.EndSession(ctx, "s1", end); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if g, err := db.GetGrant(ctx, "g1"); err != nil || g.RevokedAt == nil || !g.RevokedAt.Equal(end) {
		t.Errorf("GetGrant(g1) after EndSession = %+v, %v; want revoked at %v", g, err, end)
	}
	// The counter exists, and moves with the clients.
	v0, err := db.ClientsVersion(ctx)
	if err != nil {
		t.Fatalf("ClientsVersion: %v", err)
	}
	if err := db.DeleteClient(ctx, "c1"); err != nil {
		t.Fatalf("DeleteClient: %v", err)
	}
	if v1, err := db.ClientsVersion(ctx); err != nil || v1 == v0 {
		t.Errorf("ClientsVersion after DeleteClient = %d, %v; want a change from %d", v1, err, v0)
	}
}

// TestMigrateDownAndUpAgain checks 00002's Down: it removes what Up added,
// keeps what 00001 had, and Up applies cleanly again.
func TestMigrateDownAndUpAgain(t *testing.T) {
	ctx := t.Context()
	db := open(t, pgtest.NewEmptyDatabaseURL(t))
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if err := db.CreateUser(ctx, storage.User{ID: "u1", Email: "u1@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, storage.Client{ID: "c1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	code := storage.AuthCode{CodeHash: []byte("code"), ClientID: "c1", UserID: "u1", GrantID: "g1", CreatedAt: now, ExpiresAt: now}
	if err := db.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	g := storage.Grant{ID: "g1", UserID: "u1", ClientID: "c1", Offline: true, CreatedAt: now}
	rt := storage.RefreshToken{TokenHash: []byte("rt"), GrantID: "g1", ClientID: "c1", UserID: "u1", CreatedAt: now, ExpiresAt: now, AbsoluteExpiresAt: now}
	if _, err := db.RedeemAuthCode(ctx, code.CodeHash, now, g, storage.IssuedTokens{RefreshToken: &rt}); err != nil {
		t.Fatal(err)
	}

	if err := db.MigrateDownTo(ctx, 1); err != nil {
		t.Fatalf("MigrateDownTo(1): %v", err)
	}
	for _, table := range []string{"refresh_tokens", "access_tokens", "revoked_jwts", "change_counters"} {
		var exists bool
		if err := db.Pool().QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if exists {
			t.Errorf("table %s still exists after Down", table)
		}
	}
	var offlineColumns int
	err := db.Pool().QueryRow(ctx, `SELECT count(*) FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'grants' AND column_name = 'offline'`).Scan(&offlineColumns)
	if err != nil {
		t.Fatal(err)
	}
	if offlineColumns != 0 {
		t.Error("grants.offline still exists after Down")
	}
	var grantID string
	if err := db.Pool().QueryRow(ctx, `SELECT id FROM grants`).Scan(&grantID); err != nil {
		t.Fatalf("the grant did not survive Down: %v", err)
	}

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after Down: %v", err)
	}
	got, err := db.GetGrant(ctx, "g1")
	if err != nil {
		t.Fatalf("GetGrant after Down and Up: %v", err)
	}
	if got.Offline {
		t.Error("Offline after Down and Up = true; Down dropped the column, so it is back at its default")
	}
	if _, err := db.GetRefreshToken(ctx, rt.TokenHash); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("GetRefreshToken after Down and Up: got %v, want ErrNotFound", err)
	}
}

// TestRotationSerializesWithRevocation checks the grant row lock itself,
// which the conformance suite's race test cannot: there, a rotation that
// read the grant before a revocation committed ends in the same state as
// one that committed first. Here the revocation is held uncommitted, and
// the rotation must wait for it and then see it.
func TestRotationSerializesWithRevocation(t *testing.T) {
	ctx := t.Context()
	db := pgtest.NewStore(t)
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	if err := db.CreateUser(ctx, storage.User{ID: "u1", Email: "u1@example.com", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateClient(ctx, storage.Client{ID: "c1", CreatedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	newFamily := func(id string) storage.RefreshToken {
		t.Helper()
		code := storage.AuthCode{CodeHash: []byte("code-" + id), ClientID: "c1", UserID: "u1", GrantID: id, CreatedAt: now, ExpiresAt: now}
		if err := db.CreateAuthCode(ctx, code); err != nil {
			t.Fatal(err)
		}
		rt := storage.RefreshToken{TokenHash: []byte("rt-" + id), GrantID: id, ClientID: "c1", UserID: "u1",
			CreatedAt: now, ExpiresAt: now.Add(time.Hour), AbsoluteExpiresAt: now.Add(time.Hour)}
		g := storage.Grant{ID: id, UserID: "u1", ClientID: "c1", CreatedAt: now}
		if _, err := db.RedeemAuthCode(ctx, code.CodeHash, now, g, storage.IssuedTokens{RefreshToken: &rt}); err != nil {
			t.Fatal(err)
		}
		return rt
	}
	next := func(rt storage.RefreshToken) storage.RefreshToken {
		n := rt
		n.TokenHash = append([]byte("next-"), rt.TokenHash...)
		return n
	}
	const wait = 300 * time.Millisecond

	t.Run("rotation waits for an uncommitted revocation and sees it", func(t *testing.T) {
		rt := newFamily("g1")
		tx, err := db.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		// What RevokeGrant does, held open.
		if _, err := tx.Exec(ctx, `UPDATE grants SET revoked_at = $2 WHERE id = $1`, "g1", now); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- db.RotateRefreshToken(ctx, rt.TokenHash, now, next(rt), nil) }()
		select {
		case err := <-done:
			t.Fatalf("RotateRefreshToken returned (%v) while a revocation of its grant was uncommitted; it must wait for the grant's row lock", err)
		case <-time.After(wait):
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; !errors.Is(err, storage.ErrRevoked) {
			t.Fatalf("RotateRefreshToken after the revocation committed: got %v, want ErrRevoked", err)
		}
	})
	t.Run("revocation waits for an uncommitted rotation", func(t *testing.T) {
		newFamily("g2")
		tx, err := db.Pool().Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		// The lock RotateRefreshToken takes first, held open.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM grants WHERE id = $1 FOR UPDATE`, "g2"); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- db.RevokeGrant(ctx, "g2", now) }()
		select {
		case err := <-done:
			t.Fatalf("RevokeGrant returned (%v) while a rotation held the grant's row lock", err)
		case <-time.After(wait):
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatalf("RevokeGrant after the rotation committed: %v", err)
		}
	})
}
