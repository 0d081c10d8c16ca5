package main

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/audit"
	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// newAdminRecorder returns the recorder of an admin command's changes
// (actor "admin"). Its warnings, and any event it cannot write, go to
// standard error as JSON.
func newAdminRecorder(ctx context.Context, e env, db storage.AuditStore) *audit.Recorder {
	logger := slog.New(slog.NewJSONHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return audit.NewRecorder(ctx, db, audit.Options{Logger: logger})
}

// adminAuditTimeout bounds how long a command waits for the database to
// take its audit events before giving up (they are then on stderr).
const adminAuditTimeout = 10 * time.Second

// closeAdminRecorder writes the command's audit events before it exits.
func closeAdminRecorder(ctx context.Context, rec *audit.Recorder) error {
	// Even when the command was interrupted, what it did must be written.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), adminAuditTimeout)
	defer cancel()
	if err := rec.Close(ctx); err != nil {
		return fmt.Errorf("the change was made, but its audit event could not be stored (it is on standard error): %w", err)
	}
	return nil
}
