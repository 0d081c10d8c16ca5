package audit

import (
	"context"

	"github.com/gatehouse-idp/gatehouse/internal/keys"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// KeyChanges returns a keys.Options.OnChange that records each step of the
// signing-key lifecycle, one event per key: created, rotated (a next key
// that now signs), retired, revoked, deleted. actor is ActorSystem for the
// server's schedule, ActorAdmin for the CLI.
func KeyChanges(r *Recorder, actor string) func(context.Context, keys.Change) {
	return func(ctx context.Context, c keys.Change) {
		for _, g := range []struct {
			typ string
			ks  []keys.KeyInfo
		}{
			// Revocations first: in an incident, the revocation is the
			// cause and the promotion its consequence.
			{KeyRevoked, c.Revoked},
			{KeyRotated, c.Promoted},
			{KeyRetired, c.Retired},
			{KeyCreated, c.Created},
			{KeyDeleted, c.Deleted},
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
