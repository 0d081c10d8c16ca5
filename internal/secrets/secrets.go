// Package secrets makes and checks the high-entropy random values Gatehouse
// hands out (cookie values, codes, client secrets, tokens) and the
// identifiers it assigns.
//
// Secrets are 256-bit random values, so a single SHA-256 is the right hash
// for storing them: there is nothing to brute-force, and a password hash
// would only cost CPU on every request (see DESIGN.md, "Scale"). Passwords
// are a different matter and live in package users.
//
// This package imports nothing from Gatehouse.
package secrets

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
)

// Size is the number of random bytes in a secret: 256 bits.
const Size = 32

// New returns a fresh secret: Size random bytes from r, base64url without
// padding (43 characters).
func New(r io.Reader) (string, error) {
	b := make([]byte, Size)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Hash returns the SHA-256 of s: what storage keeps instead of s.
func Hash(s string) []byte {
	h := sha256.Sum256([]byte(s))
	return h[:]
}

// Matches reports whether s hashes to want, in time that does not depend on
// where the two differ.
func Matches(s string, want []byte) bool {
	got := Hash(s)
	return len(want) == len(got) && subtle.ConstantTimeCompare(got, want) == 1
}

// NewID returns a random identifier: 128 bits as 32 lower-case hex digits.
// Identifiers are not secret; they only must not collide.
func NewID(r io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewUUID returns a random (version 4) UUID in its canonical text form, for
// identifiers people read and copy, such as user ids.
func NewUUID(r io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("read random: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32], nil
}
