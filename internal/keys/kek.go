package keys

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
)

// KEKSize is the length of a key-encryption key: 256 bits, for AES-256.
const KEKSize = 32

const redacted = "[redacted]"

// KEK is the key-encryption key: the AES-256 key under which signing keys are
// encrypted at rest. It comes from configuration (or, for idp dev, a file)
// and never reaches the database.
//
// Printing a KEK never shows it. String, Format (so every fmt verb: %v, %+v,
// %#v, %s, %x, %q) and GoString all give "[redacted]", and LogValue makes
// slog log it redacted. Encode is the one explicit way to get the key out,
// for writing it to a file or showing it once to an operator. We chose a
// redacting String over a base64 one because String is called implicitly
// (fmt, slog's text handler, templates, errors built with %v) and a secret
// must not leak through a call nobody wrote on purpose; Encode is easy to
// find in review.
//
// The key bytes live in an unexported array, so encoding/json and similar
// reflection-based encoders see an empty struct.
type KEK struct {
	b [KEKSize]byte
}

// ParseKEK decodes a key-encryption key from standard base64 (with padding)
// of exactly 32 bytes, as printed by `openssl rand -base64 32`. Surrounding
// white space is ignored. Errors say what is wrong and never echo s.
func ParseKEK(s string) (KEK, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return KEK{}, errors.New("key-encryption key is empty (want 32 random bytes in standard base64, e.g. from `openssl rand -base64 32`)")
	}
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		// Deliberately not wrapping err: base64.CorruptInputError only
		// carries an offset, but keeping the message ours keeps it
		// obviously free of the value.
		return KEK{}, errors.New("key-encryption key is not valid standard base64 (want 32 random bytes, e.g. from `openssl rand -base64 32`)")
	}
	if len(raw) != KEKSize {
		return KEK{}, fmt.Errorf("key-encryption key decodes to %d bytes, want exactly %d", len(raw), KEKSize)
	}
	var k KEK
	copy(k.b[:], raw)
	clear(raw)
	if k.IsZero() {
		// An all-zero key is a placeholder, not a secret.
		return KEK{}, errors.New("key-encryption key is all zero bytes; generate a random one")
	}
	return k, nil
}

// GenerateKEK reads a fresh key-encryption key from r (normally
// crypto/rand.Reader).
func GenerateKEK(r io.Reader) (KEK, error) {
	var k KEK
	if _, err := io.ReadFull(r, k.b[:]); err != nil {
		return KEK{}, fmt.Errorf("generate key-encryption key: read random: %w", err)
	}
	return k, nil
}

// IsZero reports whether k is the zero value (no key configured).
func (k KEK) IsZero() bool {
	return k.b == [KEKSize]byte{}
}

// Encode returns the key in standard base64, the form ParseKEK reads. It is
// the only method that reveals the key; call it only to store or show it.
func (k KEK) Encode() string {
	return base64.StdEncoding.EncodeToString(k.b[:])
}

// String returns "[redacted]"; see Encode for the key itself.
func (k KEK) String() string { return redacted }

// GoString returns a redacted Go-syntax form, so %#v never leaks the key.
func (k KEK) GoString() string { return "keys.KEK{" + redacted + "}" }

// Format implements fmt.Formatter: every verb prints "[redacted]".
func (k KEK) Format(f fmt.State, verb rune) {
	if verb == 'v' && f.Flag('#') {
		_, _ = io.WriteString(f, k.GoString())
		return
	}
	_, _ = io.WriteString(f, redacted)
}

// LogValue implements slog.LogValuer: the key is logged as "[redacted]".
func (k KEK) LogValue() slog.Value { return slog.StringValue(redacted) }

// LoadOrCreateKEKFile reads a base64 key-encryption key from path or, if the
// file does not exist, generates one from r and writes it there. It is meant
// for `idp dev`, where nobody should have to configure a key; production
// passes the key in through configuration.
//
// Creation is atomic and never overwrites: the key is written to a
// temporary file (mode 0600) in the same directory, synced, and hard-linked
// to path, which fails if path exists. If another process created the file
// in the meantime, its key is read and returned instead. The parent
// directory is created with mode 0700 if missing. The bool reports whether
// this call created the file.
func LoadOrCreateKEKFile(path string, r io.Reader) (KEK, bool, error) {
	k, err := readKEKFile(path)
	if err == nil {
		return k, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return KEK{}, false, err
	}

	k, err = GenerateKEK(r)
	if err != nil {
		return KEK{}, false, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return KEK{}, false, fmt.Errorf("create key-encryption key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return KEK{}, false, fmt.Errorf("create key-encryption key file: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a successful link, path keeps the file
	err = writeKEKTemp(tmp, k)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return KEK{}, false, fmt.Errorf("write key-encryption key file: %w", err)
	}
	// A rename would replace a file another process created meanwhile;
	// link fails instead, so the first writer wins and everyone agrees.
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			k, err := readKEKFile(path)
			if err != nil {
				return KEK{}, false, err
			}
			return k, false, nil
		}
		return KEK{}, false, fmt.Errorf("create key-encryption key file: %w", err)
	}
	syncDir(dir)
	return k, true, nil
}

func writeKEKTemp(f *os.File, k KEK) error {
	// CreateTemp already uses 0600; be explicit in case of an odd umask
	// or platform.
	if err := f.Chmod(0o600); err != nil {
		return err
	}
	if _, err := io.WriteString(f, k.Encode()+"\n"); err != nil {
		return err
	}
	return f.Sync()
}

// syncDir makes the new directory entry durable; failure only weakens
// crash safety, so it is ignored.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// readKEKFile reads and parses a key file. Errors name the file, never its
// contents.
func readKEKFile(path string) (KEK, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return KEK{}, fmt.Errorf("read key-encryption key file: %w", err)
	}
	k, err := ParseKEK(string(bytes.TrimSpace(b)))
	clear(b)
	if err != nil {
		return KEK{}, fmt.Errorf("key-encryption key file %s: %w", path, err)
	}
	return k, nil
}

// Derive returns a 32-byte key for one purpose, derived from the KEK with
// HKDF-SHA256 (RFC 5869). Keys for different purposes are independent, and
// none of them reveals the KEK, so the KEK itself only ever encrypts
// signing keys. Every replica with the same KEK derives the same key.
func (k KEK) Derive(purpose string) []byte {
	out, err := hkdf.Key(sha256.New, k.b[:], nil, "gatehouse/"+purpose, 32)
	if err != nil {
		// Only possible for an output longer than 255*32 bytes.
		panic("keys: hkdf: " + err.Error())
	}
	return out
}
