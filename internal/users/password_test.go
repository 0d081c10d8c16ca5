package users_test

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/gatehouse-idp/gatehouse/internal/users"
)

// cheap keeps tests fast; TestHashPasswordDefaults uses the real thing.
var cheap = users.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func seeded(seed byte) *rand.ChaCha8 { return rand.NewChaCha8([32]byte{seed}) }

func TestHashPasswordDefaults(t *testing.T) {
	p := users.DefaultArgon2Params()
	if want := (users.Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}); p != want {
		t.Fatalf("DefaultArgon2Params() = %+v, want OWASP's %+v", p, want)
	}
	h, err := users.HashPassword("correct horse battery staple", p, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	// PHC string format, standard base64 without padding: 16-byte salt is
	// 22 characters, 32-byte key 43.
	re := regexp.MustCompile(`^\$argon2id\$v=19\$m=19456,t=2,p=1\$([A-Za-z0-9+/]{22})\$([A-Za-z0-9+/]{43})$`)
	m := re.FindStringSubmatch(h)
	if m == nil {
		t.Fatalf("hash %q is not an argon2id PHC string with the default parameters", h)
	}
	salt, err := base64.RawStdEncoding.DecodeString(m[1])
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.RawStdEncoding.DecodeString(m[2])
	if err != nil {
		t.Fatal(err)
	}
	// Known answer, computed independently of HashPassword.
	want := argon2.IDKey([]byte("correct horse battery staple"), salt, 2, 19456, 1, 32)
	if !bytes.Equal(key, want) {
		t.Errorf("key = %x, want argon2id(password, salt, t=2, m=19456, p=1) = %x", key, want)
	}
	// The salt is read from the reader.
	wantSalt := make([]byte, 16)
	seeded(1).Read(wantSalt)
	if !bytes.Equal(salt, wantSalt) {
		t.Errorf("salt = %x, want the first 16 bytes of the reader %x", salt, wantSalt)
	}

	ok, err := users.VerifyPassword(h, "correct horse battery staple")
	if err != nil || !ok {
		t.Errorf("VerifyPassword(right password) = %v, %v; want true, nil", ok, err)
	}
	ok, err = users.VerifyPassword(h, "correct horse battery stapler")
	if err != nil || ok {
		t.Errorf("VerifyPassword(wrong password) = %v, %v; want false, nil", ok, err)
	}
	h2, err := users.HashPassword("correct horse battery staple", p, seeded(2))
	if err != nil {
		t.Fatal(err)
	}
	if h2 == h {
		t.Error("two hashes with different salts are equal")
	}
}

func TestHashPasswordParams(t *testing.T) {
	tests := []struct {
		name string
		p    users.Argon2Params
		ok   bool
	}{
		{"cheap", cheap, true},
		{"four threads", users.Argon2Params{Memory: 64, Time: 3, Threads: 4, SaltLen: 32, KeyLen: 64}, true},
		{"zero time", users.Argon2Params{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
		{"zero threads", users.Argon2Params{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32}, false},
		{"memory below 8 per thread", users.Argon2Params{Memory: 31, Time: 1, Threads: 4, SaltLen: 16, KeyLen: 32}, false},
		{"memory above 1 GiB", users.Argon2Params{Memory: 1<<20 + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
		{"salt too short", users.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 7, KeyLen: 32}, false},
		{"key too short", users.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 15}, false},
		{"time absurd", users.Argon2Params{Memory: 64, Time: 1000, Threads: 1, SaltLen: 16, KeyLen: 32}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.p.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate(%+v) = %v, want ok=%v", tt.p, err, tt.ok)
			}
			h, err := users.HashPassword("password1", tt.p, seeded(1))
			if (err == nil) != tt.ok {
				t.Fatalf("HashPassword(%+v) error = %v, want ok=%v", tt.p, err, tt.ok)
			}
			if !tt.ok {
				return
			}
			want := fmt.Sprintf("$argon2id$v=19$m=%d,t=%d,p=%d$", tt.p.Memory, tt.p.Time, tt.p.Threads)
			if !strings.HasPrefix(h, want) {
				t.Errorf("hash %q does not start with %q", h, want)
			}
			// Verification reads the parameters from the string.
			if ok, err := users.VerifyPassword(h, "password1"); !ok || err != nil {
				t.Errorf("VerifyPassword = %v, %v; want true, nil", ok, err)
			}
		})
	}
}

func TestHashPasswordRandFailure(t *testing.T) {
	_, err := users.HashPassword("password1", cheap, strings.NewReader("short"))
	if err == nil {
		t.Fatal("HashPassword with a failing random source succeeded")
	}
}

func TestVerifyPasswordNormalizesUnicode(t *testing.T) {
	tests := []struct{ name, stored, typed string }{
		{"NFC vs NFD", "caf\u00e9-latte", "cafe\u0301-latte"},
		{"ligature", "\ufb01refox-123", "firefox-123"},
		{"full-width", "\uff30\uff41\uff53\uff53word1", "Password1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := users.HashPassword(tt.stored, cheap, seeded(1))
			if err != nil {
				t.Fatal(err)
			}
			if ok, err := users.VerifyPassword(h, tt.typed); !ok || err != nil {
				t.Errorf("VerifyPassword(%q) against hash of %q = %v, %v; want true, nil", tt.typed, tt.stored, ok, err)
			}
		})
	}
}

func TestVerifyPasswordTampered(t *testing.T) {
	const pw = "password1"
	good, err := users.HashPassword(pw, cheap, seeded(1))
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", alg, v, params, salt, key
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	flip := func(s string) string { // change one base64 digit
		b := []byte(s)
		if b[0] == 'A' {
			b[0] = 'B'
		} else {
			b[0] = 'A'
		}
		return string(b)
	}
	salt8 := base64.RawStdEncoding.EncodeToString(make([]byte, 7))
	key15 := base64.RawStdEncoding.EncodeToString(make([]byte, 15))

	// Tampering that keeps the format is a wrong password, not an error.
	mismatches := []struct{ name, hash string }{
		{"key changed", with(5, flip(parts[5]))},
		{"salt changed", with(4, flip(parts[4]))},
		{"memory changed", with(3, "m=128,t=1,p=1")},
		{"time changed", with(3, "m=64,t=2,p=1")},
	}
	for _, tt := range mismatches {
		t.Run(tt.name, func(t *testing.T) {
			ok, err := users.VerifyPassword(tt.hash, pw)
			if ok || err != nil {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false, nil", tt.hash, ok, err)
			}
		})
	}

	malformed := []struct{ name, hash string }{
		{"empty", ""},
		{"not PHC", "password1"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", with(1, "argon2i")},
		{"argon2d", with(1, "argon2d")},
		{"upper-case algorithm", with(1, "ARGON2ID")},
		{"version 16", with(2, "v=16")},
		{"no version", strings.Join(append(parts[:2:2], parts[3:]...), "$")},
		{"extra field", good + "$x"},
		{"no leading $", strings.TrimPrefix(good, "$")},
		{"memory above 1 GiB", with(3, "m=1048577,t=1,p=1")},
		{"memory 4 TiB", with(3, "m=4294967295,t=1,p=1")},
		{"memory overflows uint32", with(3, "m=4294967296,t=1,p=1")},
		{"memory below 8p", with(3, "m=7,t=1,p=1")},
		{"time zero", with(3, "m=64,t=0,p=1")},
		{"time absurd", with(3, "m=64,t=100000,p=1")},
		{"threads zero", with(3, "m=64,t=1,p=0")},
		{"threads 255", with(3, "m=4096,t=1,p=255")},
		{"threads 256", with(3, "m=4096,t=1,p=256")},
		{"negative", with(3, "m=-64,t=1,p=1")},
		{"plus sign", with(3, "m=+64,t=1,p=1")},
		{"leading zero", with(3, "m=064,t=1,p=1")},
		{"parameters reordered", with(3, "t=1,m=64,p=1")},
		{"parameter missing", with(3, "m=64,t=1")},
		{"parameter extra", with(3, "m=64,t=1,p=1,keyid=1")},
		{"parameters empty", with(3, "")},
		{"salt not base64", with(4, "!!!!!!!!!!!!")},
		{"salt padded", with(4, parts[4]+"==")},
		{"salt too short", with(4, salt8)},
		{"salt empty", with(4, "")},
		{"key not base64", with(5, "****")},
		{"key too short", with(5, key15)},
		{"key empty", with(5, "")},
		{"key non-canonical trailing bits", with(5, parts[5][:len(parts[5])-1]+"B")},
		{"overlong", good + strings.Repeat("A", 1000)},
	}
	for _, tt := range malformed {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			ok, err := users.VerifyPassword(tt.hash, pw)
			if ok || !errors.Is(err, users.ErrMalformedHash) {
				t.Errorf("VerifyPassword(%q) = %v, %v; want false, ErrMalformedHash", tt.hash, ok, err)
			}
			// Rejected before any hashing, let alone allocating the
			// claimed memory.
			if d := time.Since(start); d > 50*time.Millisecond {
				t.Errorf("rejecting took %v", d)
			}
		})
	}
}
