package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// auditRowsPerStatement keeps a multi-row INSERT (9 parameters a row)
// well under SQLite's limit of 32766 parameters per statement.
const auditRowsPerStatement = 1000

// AppendAuditEvents inserts events with multi-row INSERTs in one
// transaction: all or none. Rows are inserted in the order given, so their
// ids follow it.
func (db *DB) AppendAuditEvents(ctx context.Context, events []storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	args := make([]any, 0, 9*min(len(events), auditRowsPerStatement))
	err := db.inTx(ctx, func(tx *sql.Tx) error {
		for start := 0; start < len(events); start += auditRowsPerStatement {
			chunk := events[start:min(start+auditRowsPerStatement, len(events))]
			args = args[:0]
			for i, e := range chunk {
				d, err := encodeDetails(e.Details)
				if err != nil {
					return fmt.Errorf("event %d (%s): %w", start+i, e.Type, err)
				}
				args = append(args, micros(e.Time), e.Type, e.Actor, e.SessionID, e.UserID, e.ClientID, e.IP, e.UserAgent, d)
			}
			q := `INSERT INTO audit_events (time, type, actor, session_id, user_id, client_id, ip, user_agent, details) VALUES ` +
				strings.TrimSuffix(strings.Repeat("(?, ?, ?, ?, ?, ?, ?, ?, ?),", len(chunk)), ",")
			if _, err := tx.ExecContext(ctx, q, args...); err != nil {
				return mapErr(err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append audit events: %w", err)
	}
	return nil
}

// encodeDetails returns the JSON of d, or nil (SQL NULL) for an empty map.
func encodeDetails(d map[string]any) (any, error) {
	if len(d) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	return string(b), nil
}

// ListAuditEvents returns the events matching f, ordered by id.
func (db *DB) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v ...any) {
		where = append(where, cond)
		args = append(args, v...)
	}
	if f.UserID != "" {
		add("user_id = ?", f.UserID)
	}
	if f.ClientID != "" {
		add("client_id = ?", f.ClientID)
	}
	if f.SessionID != "" {
		add("session_id = ?", f.SessionID)
	}
	if len(f.Types) > 0 {
		vs := make([]any, len(f.Types))
		for i, t := range f.Types {
			vs[i] = t
		}
		add("type IN ("+strings.TrimSuffix(strings.Repeat("?,", len(vs)), ",")+")", vs...)
	}
	if !f.Since.IsZero() {
		add("time >= ?", micros(f.Since))
	}
	if !f.Until.IsZero() {
		add("time < ?", micros(f.Until))
	}
	if f.AfterID > 0 {
		add("id > ?", f.AfterID)
	}
	q := `SELECT id, time, type, actor, session_id, user_id, client_id, ip, user_agent, details FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		q += " LIMIT ?"
		args = append(args, f.Limit)
	}
	rows, err := db.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	out, err := collect(rows, func(r scanner) (storage.AuditEvent, error) {
		var (
			e       storage.AuditEvent
			t       int64
			details sql.NullString
		)
		if err := r.Scan(&e.ID, &t, &e.Type, &e.Actor, &e.SessionID, &e.UserID, &e.ClientID, &e.IP, &e.UserAgent, &details); err != nil {
			return e, err
		}
		e.Time = fromMicros(t)
		if details.Valid {
			if err := json.Unmarshal([]byte(details.String), &e.Details); err != nil {
				return e, fmt.Errorf("event %d details: %w", e.ID, err)
			}
		}
		return e, nil
	})
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// DeleteAuditEventsBefore removes events older than t (retention).
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	res, err := db.db.ExecContext(ctx, `DELETE FROM audit_events WHERE time < ?`, micros(t))
	if err != nil {
		return 0, fmt.Errorf("delete audit events: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("delete audit events: %w", err)
	}
	return n, nil
}
