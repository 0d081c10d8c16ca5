package storage

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestLogValueRedactsSecrets(t *testing.T) {
	tests := []struct {
		name   string
		value  any
		secret string
		shown  string
	}{
		{"user", User{ID: "u1", Email: "a@example.com", PasswordHash: "$argon2id$v=19$SECRET"}, "SECRET", "a@example.com"},
		{"client", Client{ID: "c1", SecretHash: []byte("SECRET")}, "SECRET", "c1"},
		{"session", Session{ID: "s1", SecretHash: []byte("SECRET"), UserID: "u1"}, "SECRET", "s1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, h := range []func(*bytes.Buffer) slog.Handler{
				func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, nil) },
				func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, nil) },
			} {
				var buf bytes.Buffer
				slog.New(h(&buf)).Info("x", "v", tt.value)
				if strings.Contains(buf.String(), tt.secret) || strings.Contains(buf.String(), "U0VDUkVU") {
					t.Errorf("log line reveals the secret: %s", buf.String())
				}
				if !strings.Contains(buf.String(), tt.shown) {
					t.Errorf("log line lacks %q: %s", tt.shown, buf.String())
				}
			}
		})
	}
}
