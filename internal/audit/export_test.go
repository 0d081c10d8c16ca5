package audit

import (
	"context"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// NewRecorderTicking is NewRecorder with the flush timer replaced by tick,
// so tests decide when the interval has passed.
func NewRecorderTicking(ctx context.Context, store storage.AuditStore, opts Options, tick <-chan time.Time) *Recorder {
	return newRecorder(ctx, store, opts, func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} })
}
