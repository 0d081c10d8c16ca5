package keys

import (
	"context"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// AuditChanges returns an Options.OnChange that records each step of the
// signing-key lifecycle in r, one event per key: created, rotated (a next
// key that now signs), retired, revoked, deleted, with kid and alg. actor
// is audit.ActorSystem for the server's schedule, audit.ActorAdmin for the
// CLI.
func AuditChanges(r *audit.Recorder, actor string) func(context.Context, Change) {
	return func(ctx context.Context, c Change) {
		for _, g := range []struct {
			typ string
			ks  []KeyInfo
		}{
			// Revocations first: in an incident, the revocation is the
			// cause and the promotion its consequence.
			{audit.KeyRevoked, c.Revoked},
			{audit.KeyRotated, c.Promoted},
			{audit.KeyRetired, c.Retired},
			{audit.KeyCreated, c.Created},
			{audit.KeyDeleted, c.Deleted},
		} {
			for _, k := range g.ks {
				r.Record(ctx, storage.AuditEvent{
					Type: g.typ, Actor: actor,
					Details: map[string]any{"kid": k.ID, "alg": k.Algorithm},
				})
			}
		}
	}
}
