package users

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"golang.org/x/crypto/argon2"
	"golang.org/x/text/unicode/norm"
)

// Argon2Params are the argon2id cost parameters for new password hashes.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over memory
	Threads uint8  // degree of parallelism
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes
}

// DefaultArgon2Params returns OWASP's recommended argon2id configuration
// (Password Storage Cheat Sheet): 19 MiB of memory, 2 passes, 1 thread,
// with a 16-byte salt and a 32-byte key.
func DefaultArgon2Params() Argon2Params {
	return Argon2Params{Memory: 19456, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}
}

// Bounds on the parameters of a hash. A stored hash is data, and data can be
// tampered with or corrupted: a hash claiming m=4 TiB must be an error, not
// an allocation. The same bounds apply to new hashes.
const (
	maxMemory     = 1 << 20 // KiB: 1 GiB
	maxTime       = 32
	maxThreads    = 64
	minSaltLen    = 8 // RFC 9106 §3.1: salt of at least 8 bytes
	maxSaltLen    = 64
	minKeyLen     = 16
	maxKeyLen     = 64
	maxEncodedLen = 512
)

// ErrMalformedHash is wrapped by VerifyPassword when the stored hash cannot
// be used: not argon2id, not PHC format, or parameters out of bounds.
var ErrMalformedHash = errors.New("users: malformed password hash")

// Validate reports whether p is within the bounds this package accepts for
// new hashes and stored ones (at most 1 GiB of memory, 32 passes, 64
// threads; salts of 8 to 64 bytes, keys of 16 to 64), so that a
// configuration can be checked at start-up rather than at the first
// sign-in.
func (p Argon2Params) Validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time cost t=%d outside [1, %d]", p.Time, maxTime)
	case p.Threads < 1 || p.Threads > maxThreads:
		return fmt.Errorf("parallelism p=%d outside [1, %d]", p.Threads, maxThreads)
	// RFC 9106 §3.1: memory must be at least 8*p KiB.
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemory:
		return fmt.Errorf("memory m=%d KiB outside [%d, %d]", p.Memory, 8*uint32(p.Threads), maxMemory)
	case p.SaltLen < minSaltLen || p.SaltLen > maxSaltLen:
		return fmt.Errorf("salt length %d outside [%d, %d]", p.SaltLen, minSaltLen, maxSaltLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxKeyLen:
		return fmt.Errorf("key length %d outside [%d, %d]", p.KeyLen, minKeyLen, maxKeyLen)
	}
	return nil
}

// normalizePassword applies NFKC, as NIST SP 800-63B §5.1.1.2 recommends,
// so that the same password typed on keyboards or systems that compose
// characters differently (macOS sends NFD, most others NFC) still matches.
// Both hashing and verifying go through it; changing it would lock people
// out.
func normalizePassword(password string) []byte {
	return norm.NFKC.Bytes([]byte(password))
}

// b64 is the PHC string format's base64: standard alphabet, no padding.
// Strict rejects non-zero trailing bits, so one hash has one spelling.
var b64 = base64.RawStdEncoding.Strict()

// HashPassword hashes password with argon2id under p, with a fresh salt read
// from r, and returns it in PHC string format:
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<key>
//
// The password is NFKC-normalized first (see VerifyPassword). Length limits
// are the caller's business (Service.Create enforces them).
func HashPassword(password string, p Argon2Params, r io.Reader) (string, error) {
	if err := p.Validate(); err != nil {
		return "", fmt.Errorf("hash password: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(r, salt); err != nil {
		return "", fmt.Errorf("hash password: read salt: %w", err)
	}
	key := argon2.IDKey(normalizePassword(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether password matches the argon2id hash encoded
// in PHC string format. The parameters come from the string, so hashes made
// under older parameters keep working. A wrong password is (false, nil); a
// hash that cannot be used (malformed, or with parameters outside sane
// bounds, such as more than 1 GiB of memory) is (false, error wrapping
// ErrMalformedHash), checked before any memory is allocated.
func VerifyPassword(encoded, password string) (bool, error) {
	p, salt, want, err := decodeHash(encoded)
	if err != nil {
		return false, err
	}
	got := argon2.IDKey(normalizePassword(password), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func decodeHash(encoded string) (p Argon2Params, salt, key []byte, err error) {
	bad := func(format string, args ...any) (Argon2Params, []byte, []byte, error) {
		return Argon2Params{}, nil, nil, fmt.Errorf("%w: %s", ErrMalformedHash, fmt.Sprintf(format, args...))
	}
	if len(encoded) > maxEncodedLen {
		return bad("longer than %d bytes", maxEncodedLen)
	}
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, key
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return bad("not a PHC string with 5 fields")
	}
	if parts[1] != "argon2id" {
		return bad("algorithm %q, want argon2id", parts[1])
	}
	if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return bad("version %q, want v=%d", parts[2], argon2.Version)
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return bad("parameters %q, want m=,t=,p=", parts[3])
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return bad("parameter %d is %q, want %s=", i+1, params[i], name)
		}
		// No signs, no leading zeros: one hash, one spelling.
		if v == "" || v[0] < '1' || v[0] > '9' {
			return bad("parameter %s=%q is not a positive decimal", name, v)
		}
		n, perr := strconv.ParseUint(v, 10, 32)
		if perr != nil {
			return bad("parameter %s=%q: %v", name, v, perr)
		}
		vals[i] = n
	}
	if vals[2] > maxThreads {
		return bad("parallelism p=%d above %d", vals[2], maxThreads)
	}
	if salt, err = b64.DecodeString(parts[4]); err != nil {
		return bad("salt: %v", err)
	}
	if key, err = b64.DecodeString(parts[5]); err != nil {
		return bad("key: %v", err)
	}
	p = Argon2Params{
		Memory:  uint32(vals[0]),
		Time:    uint32(vals[1]),
		Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)),
		KeyLen:  uint32(len(key)),
	}
	if err := p.Validate(); err != nil {
		return bad("%v", err)
	}
	return p, salt, key, nil
}
