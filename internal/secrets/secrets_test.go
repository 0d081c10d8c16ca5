package secrets

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"regexp"
	"testing"
)

func TestNewIsRandom256Bits(t *testing.T) {
	a, err := New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if a == b {
		t.Fatal("two secrets are equal")
	}
	raw, err := base64.RawURLEncoding.DecodeString(a)
	if err != nil {
		t.Fatalf("secret is not base64url: %v", err)
	}
	if len(raw) != 32 {
		t.Fatalf("secret has %d bytes, want 32", len(raw))
	}
}

func TestMatches(t *testing.T) {
	h := Hash("s3cret")
	tests := []struct {
		name string
		in   string
		want []byte
		ok   bool
	}{
		{"same", "s3cret", h, true},
		{"different", "s3creT", h, false},
		{"empty", "", h, false},
		{"truncated hash", "s3cret", h[:16], false},
		{"nil hash", "s3cret", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Matches(tt.in, tt.want); got != tt.ok {
				t.Fatalf("Matches(%q) = %v, want %v", tt.in, got, tt.ok)
			}
		})
	}
}

func TestNewUUIDFormat(t *testing.T) {
	id, err := NewUUID(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	if !re.MatchString(id) {
		t.Fatalf("NewUUID() = %q, not a v4 UUID", id)
	}
}

func TestRandomFailureIsReported(t *testing.T) {
	short := bytes.NewReader(make([]byte, 3))
	if _, err := New(short); err == nil {
		t.Fatal("New with an exhausted reader: want error")
	}
	if _, err := NewID(errReader{}); err == nil {
		t.Fatal("NewID with a failing reader: want error")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("boom") }
