package oauth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
)

// PKCE methods. Only S256 is accepted: plain offers no protection when the
// authorization request leaks, and RFC 9700 §2.1.1 says not to use it.
const PKCES256 = "S256"

// validVerifier checks RFC 7636 §4.1: 43 to 128 characters from
// [A-Z] / [a-z] / [0-9] / "-" / "." / "_" / "~".
func validVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'A' && c <= 'Z', c >= 'a' && c <= 'z', c >= '0' && c <= '9',
			c == '-', c == '.', c == '_', c == '~':
		default:
			return false
		}
	}
	return true
}

// validS256Challenge checks that c is what S256 produces: the base64url
// (unpadded) encoding of a SHA-256 digest, 43 characters.
func validS256Challenge(c string) bool {
	if len(c) != 43 {
		return false
	}
	// Strict refuses non-zero padding bits: such a challenge is the
	// output of no verifier, and the code could never be redeemed.
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// verifyS256 checks RFC 7636 §4.6:
// BASE64URL-ENCODE(SHA256(ASCII(code_verifier))) == code_challenge.
func verifyS256(verifier, challenge string) bool {
	sum := sha256.Sum256([]byte(verifier))
	got := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(got), []byte(challenge)) == 1
}
