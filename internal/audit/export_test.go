package audit

import (
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// NewRecorderTicking is NewRecorder with the flush timer replaced by tick,
// so tests decide when the interval has passed.
func NewRecorderTicking(store storage.AuditStore, opts Options, tick <-chan time.Time) *Recorder {
	return newRecorder(store, opts, func(time.Duration) (<-chan time.Time, func()) { return tick, func() {} })
}
