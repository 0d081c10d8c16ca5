package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// AppendAuditEvents inserts events in one statement: the columns go as
// arrays and unnest turns them back into rows, so a batch of any size is
// one round trip with ten parameters. WITH ORDINALITY ... ORDER BY makes
// the identity follow the order given.
func (db *DB) AppendAuditEvents(ctx context.Context, events []storage.AuditEvent) error {
	if len(events) == 0 {
		return nil
	}
	n := len(events)
	var (
		times                                           = make([]time.Time, n)
		types, actors, sids, uids, cids, ips, uas, dets = make([]string, n), make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]*string, n)
	)
	for i, e := range events {
		d, err := encodeDetails(e.Details)
		if err != nil {
			return fmt.Errorf("append audit events: event %d (%s): %w", i, e.Type, err)
		}
		times[i], types[i], actors[i], sids[i], uids[i], cids[i], ips[i], uas[i], dets[i] =
			e.Time, e.Type, e.Actor, e.SessionID, e.UserID, e.ClientID, e.IP, e.UserAgent, d
	}
	_, err := db.pool.Exec(ctx, `
		INSERT INTO audit_events (time, type, actor, session_id, user_id, client_id, ip, user_agent, details)
		SELECT t, ty, a, s, u, c, ip, ua, d::jsonb
		FROM unnest($1::timestamptz[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[],
		            $7::text[], $8::text[], $9::text[])
		     WITH ORDINALITY AS e(t, ty, a, s, u, c, ip, ua, d, ord)
		ORDER BY ord`,
		times, types, actors, sids, uids, cids, ips, uas, dets)
	if err != nil {
		return fmt.Errorf("append audit events: %w", mapErr(err))
	}
	return nil
}

// encodeDetails returns the JSON of d, or nil (SQL NULL) for an empty map.
func encodeDetails(d map[string]any) (*string, error) {
	if len(d) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, fmt.Errorf("details: %w", err)
	}
	s := string(b)
	return &s, nil
}

// ListAuditEvents returns the events matching f, ordered by id.
func (db *DB) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, strings.ReplaceAll(cond, "?", "$"+strconv.Itoa(len(args))))
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
		add("type = ANY(?)", f.Types)
	}
	if !f.Since.IsZero() {
		add("time >= ?", f.Since)
	}
	if !f.Until.IsZero() {
		add("time < ?", f.Until)
	}
	if f.AfterID > 0 {
		add("id > ?", f.AfterID)
	}
	q := `SELECT id, time, type, actor, session_id, user_id, client_id, ip, user_agent, details::text FROM audit_events`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY id"
	if f.Limit > 0 {
		args = append(args, f.Limit)
		q += " LIMIT $" + strconv.Itoa(len(args))
	}
	rows, err := db.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	defer rows.Close()
	var out []storage.AuditEvent
	for rows.Next() {
		var (
			e       storage.AuditEvent
			details *string
		)
		if err := rows.Scan(&e.ID, &e.Time, &e.Type, &e.Actor, &e.SessionID, &e.UserID, &e.ClientID, &e.IP, &e.UserAgent, &details); err != nil {
			return nil, fmt.Errorf("list audit events: %w", err)
		}
		e.Time = e.Time.UTC()
		if details != nil {
			if err := json.Unmarshal([]byte(*details), &e.Details); err != nil {
				return nil, fmt.Errorf("list audit events: event %d details: %w", e.ID, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list audit events: %w", err)
	}
	return out, nil
}

// DeleteAuditEventsBefore removes events older than t (retention).
func (db *DB) DeleteAuditEventsBefore(ctx context.Context, t time.Time) (int64, error) {
	tag, err := db.pool.Exec(ctx, `DELETE FROM audit_events WHERE time < $1`, t)
	if err != nil {
		return 0, fmt.Errorf("delete audit events: %w", err)
	}
	return tag.RowsAffected(), nil
}
