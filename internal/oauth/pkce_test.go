package oauth

import (
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// RFC 7636 Appendix B.
const (
	rfc7636Verifier  = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
	rfc7636Challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)

func TestVerifyS256(t *testing.T) {
	tests := []struct {
		name      string
		verifier  string
		challenge string
		want      bool
	}{
		{"RFC 7636 Appendix B test vector", rfc7636Verifier, rfc7636Challenge, true},
		{"RFC 7636 §4.6 last verifier character changed", rfc7636Verifier[:42] + "j", rfc7636Challenge, false},
		{"challenge last character changed", rfc7636Verifier, rfc7636Challenge[:42] + "A", false},
		{"padded challenge", rfc7636Verifier, rfc7636Challenge + "=", false},
		{"RFC 7636 §4.2 non-canonical challenge", rfc7636Verifier, nonCanonical(rfc7636Challenge), false},
		{"standard base64 alphabet challenge", rfc7636Verifier, strings.ReplaceAll(rfc7636Challenge, "-", "+"), false},
		{"RFC 7636 §4.2 plain: verifier as challenge", rfc7636Verifier, rfc7636Verifier, false},
		{"empty challenge", rfc7636Verifier, "", false},
		{"empty verifier", "", rfc7636Challenge, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := verifyS256(tt.verifier, tt.challenge); got != tt.want {
				t.Errorf("verifyS256(%q, %q) = %v, want %v", tt.verifier, tt.challenge, got, tt.want)
			}
		})
	}
}

func TestValidVerifier(t *testing.T) {
	tests := []struct {
		name     string
		verifier string
		want     bool
	}{
		{"RFC 7636 Appendix B verifier", rfc7636Verifier, true},
		{"RFC 7636 §4.1 length 42 too short", strings.Repeat("a", 42), false},
		{"RFC 7636 §4.1 length 43 minimum", strings.Repeat("a", 43), true},
		{"RFC 7636 §4.1 length 128 maximum", strings.Repeat("a", 128), true},
		{"RFC 7636 §4.1 length 129 too long", strings.Repeat("a", 129), false},
		{"RFC 7636 §4.1 all unreserved characters", "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~", true},
		{"empty", "", false},
		{"plus", strings.Repeat("a", 42) + "+", false},
		{"slash", strings.Repeat("a", 42) + "/", false},
		{"equals padding", strings.Repeat("a", 42) + "=", false},
		{"space", strings.Repeat("a", 21) + " " + strings.Repeat("a", 21), false},
		{"percent", strings.Repeat("a", 42) + "%", false},
		{"NUL", strings.Repeat("a", 42) + "\x00", false},
		{"non-ASCII letter", strings.Repeat("a", 42) + "é", false},
		{"43 bytes but multi-byte", strings.Repeat("a", 41) + "é", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validVerifier(tt.verifier); got != tt.want {
				t.Errorf("validVerifier(%q) = %v, want %v", tt.verifier, got, tt.want)
			}
		})
	}
}

func TestValidS256Challenge(t *testing.T) {
	tests := []struct {
		name      string
		challenge string
		want      bool
	}{
		{"RFC 7636 Appendix B challenge", rfc7636Challenge, true},
		{"RFC 7636 §4.2 42 characters", rfc7636Challenge[:42], false},
		{"44 characters", rfc7636Challenge + "A", false},
		{"padded", rfc7636Challenge + "=", false},
		{"standard alphabet +", strings.ReplaceAll(rfc7636Challenge, "-", "+"), false},
		{"standard alphabet /", rfc7636Challenge[:42] + "/", false},
		{"RFC 7636 §4.2 plain verifier is not an S256 challenge", strings.Repeat("a", 50), false},
		{"43 characters with a dot", rfc7636Challenge[:42] + ".", false},
		{"43 characters with a tilde", rfc7636Challenge[:42] + "~", false},
		{"empty", "", false},
		// The last of 43 base64 characters carries 2 bits of padding that
		// BASE64URL-ENCODE(SHA256(...)) always sets to zero; "N" differs
		// from "M" only there, so no verifier can ever produce it.
		{"RFC 7636 §4.2 non-canonical last character", rfc7636Challenge[:42] + "N", false},
		{"canonical challenge of another verifier", s256(strings.Repeat("v", 43)), true},
		{"non-canonical last character of another challenge", nonCanonical(s256(strings.Repeat("v", 43))), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := validS256Challenge(tt.challenge); got != tt.want {
				t.Errorf("validS256Challenge(%q) = %v, want %v", tt.challenge, got, tt.want)
			}
		})
	}
}

func TestCheckPKCE(t *testing.T) {
	withChallenge := storage.AuthCode{CodeChallenge: rfc7636Challenge, CodeChallengeMethod: PKCES256}
	tests := []struct {
		name     string
		code     storage.AuthCode
		verifier string
		wantErr  bool
	}{
		{"RFC 7636 §4.6 matching verifier", withChallenge, rfc7636Verifier, false},
		{"no challenge, no verifier", storage.AuthCode{}, "", false},
		{"RFC 7636 §4.6 wrong verifier", withChallenge, strings.Repeat("a", 43), true},
		{"RFC 7636 §4.5 missing verifier", withChallenge, "", true},
		{"RFC 7636 §4.2 plain: challenge sent as verifier", withChallenge, rfc7636Challenge, true},
		{"RFC 9700 §4.8.2 downgrade: verifier without challenge", storage.AuthCode{}, rfc7636Verifier, true},
		{"RFC 7636 §4.1 verifier with invalid characters", storage.AuthCode{CodeChallenge: s256(strings.Repeat("a", 42) + "+")}, strings.Repeat("a", 42) + "+", true},
		{"RFC 7636 §4.1 verifier too short though hash matches", storage.AuthCode{CodeChallenge: s256("short")}, "short", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := checkPKCE(tt.code, tt.verifier)
			if !tt.wantErr {
				if e != nil {
					t.Fatalf("checkPKCE = %v, want nil", e)
				}
				return
			}
			// RFC 6749 §5.2 / RFC 7636 §4.6: invalid_grant.
			wantError(t, e, "invalid_grant", http.StatusBadRequest)
		})
	}
}

// s256 computes an S256 challenge independently of the code under test.
func s256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// nonCanonical sets a padding bit in the last character of a 43-character
// challenge: the same 32 bytes to a lenient decoder, but not the encoding of
// any hash.
func nonCanonical(c string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	i := strings.IndexByte(alphabet, c[42])
	return c[:42] + string(alphabet[i+1])
}
