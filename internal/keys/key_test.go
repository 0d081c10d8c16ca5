package keys

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

func testKEK(t testing.TB) KEK {
	t.Helper()
	k, err := GenerateKEK(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	kek := testKEK(t)
	plaintext := []byte("a private key, in PKCS#8 in real life")
	nonce := bytes.Repeat([]byte{0xAB}, nonceSize)

	ct, err := seal(kek, "kid-1", RS256, plaintext, bytes.NewReader(nonce))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ct[:nonceSize], nonce) {
		t.Errorf("ciphertext does not start with the nonce from the reader")
	}
	if len(ct) != nonceSize+len(plaintext)+16 {
		t.Errorf("len(ciphertext) = %d, want nonce + plaintext + 16-byte tag = %d", len(ct), nonceSize+len(plaintext)+16)
	}
	if bytes.Contains(ct, plaintext[:16]) {
		t.Error("ciphertext contains the plaintext")
	}
	got, err := open(kek, "kid-1", RS256, ct)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !bytes.Equal(got, plaintext) {
		t.Fatalf("open = %q, want %q", got, plaintext)
	}

	ct2, err := seal(kek, "kid-1", RS256, plaintext, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ct, ct2) {
		t.Error("two encryptions with different nonces are equal")
	}

	t.Run("every flipped bit fails", func(t *testing.T) {
		for i := range ct {
			for bit := range 8 {
				bad := bytes.Clone(ct)
				bad[i] ^= 1 << bit
				if _, err := open(kek, "kid-1", RS256, bad); err == nil {
					t.Fatalf("flipping bit %d of byte %d went unnoticed", bit, i)
				}
			}
		}
	})

	other := testKEK(t)
	tests := []struct {
		name     string
		kek      KEK
		kid, alg string
		ct       []byte
	}{
		{"other kid", kek, "kid-2", RS256, ct},
		{"other alg", kek, "kid-1", ES256, ct},
		{"kid and alg boundary moved", kek, "kid-1R", "S256", ct},
		{"other kek", other, "kid-1", RS256, ct},
		{"zero kek", KEK{}, "kid-1", RS256, ct},
		{"truncated", kek, "kid-1", RS256, ct[:len(ct)-1]},
		{"only nonce and tag", kek, "kid-1", RS256, ct[:nonceSize+16]},
		{"too short", kek, "kid-1", RS256, ct[:nonceSize]},
		{"empty", kek, "kid-1", RS256, nil},
		{"appended", kek, "kid-1", RS256, append(bytes.Clone(ct), 0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := open(tt.kek, tt.kid, tt.alg, tt.ct); err == nil {
				t.Fatalf("open succeeded: %q", got)
			}
		})
	}

	if _, err := seal(KEK{}, "kid", RS256, plaintext, rand.Reader); err == nil {
		t.Error("seal with a zero KEK succeeded")
	}
	if _, err := seal(kek, "kid", RS256, plaintext, bytes.NewReader(nil)); err == nil {
		t.Error("seal without random bytes for the nonce succeeded")
	}
}

func TestAdditionalDataUnambiguous(t *testing.T) {
	pairs := [][2]string{{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}, {"a\x00", "b"}, {"a", "\x00b"}}
	seen := map[string][2]string{}
	for _, p := range pairs {
		aad := string(additionalData(p[0], p[1]))
		if q, dup := seen[aad]; dup {
			t.Errorf("%q and %q give the same additional data", p, q)
		}
		seen[aad] = p
	}
}

// TestThumbprintRFC7638 checks the example of RFC 7638 §3.1.
func TestThumbprintRFC7638(t *testing.T) {
	n, err := base64.RawURLEncoding.DecodeString("0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(&rsa.PublicKey{N: new(big.Int).SetBytes(n), E: 65537})
	if err != nil {
		t.Fatal(err)
	}
	if want := "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"; got != want {
		t.Errorf("Thumbprint = %q, want %q", got, want)
	}
}

func TestGenerate(t *testing.T) {
	kek := testKEK(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	for _, alg := range SupportedAlgorithms() {
		t.Run(alg, func(t *testing.T) {
			k, err := Generate(alg, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			switch priv := k.priv.(type) {
			case *rsa.PrivateKey:
				if alg != RS256 || priv.N.BitLen() != 2048 {
					t.Errorf("%s: RSA key of %d bits", alg, priv.N.BitLen())
				}
			case *ecdsa.PrivateKey:
				if alg != ES256 || priv.Curve != elliptic.P256() {
					t.Errorf("%s: ECDSA key on %s", alg, priv.Curve.Params().Name)
				}
			case ed25519.PrivateKey:
				if alg != EdDSA {
					t.Errorf("%s: Ed25519 key", alg)
				}
			default:
				t.Fatalf("%s: key of type %T", alg, priv)
			}
			if tp, _ := Thumbprint(k.Public()); k.ID != tp || len(k.ID) != 43 {
				t.Errorf("kid %q is not the SHA-256 thumbprint %q", k.ID, tp)
			}

			row, err := k.Record(kek, storage.KeyActive, now, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if row.ID != k.ID || row.Algorithm != alg || row.State != storage.KeyActive ||
				!row.CreatedAt.Equal(now) || row.ActivatedAt == nil || !row.ActivatedAt.Equal(now) || row.RetiredAt != nil {
				t.Errorf("row = %+v", row)
			}
			var jwk map[string]any
			if err := json.Unmarshal(row.PublicJWK, &jwk); err != nil {
				t.Fatal(err)
			}
			if jwk["kid"] != k.ID || jwk["alg"] != alg || jwk["use"] != "sig" {
				t.Errorf("public JWK %s lacks kid/alg/use", row.PublicJWK)
			}
			for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
				if _, ok := jwk[private]; ok {
					t.Errorf("public JWK has private member %q", private)
				}
			}
			der := mustPKCS8(t, k)
			if bytes.Contains(row.PrivateKeyEncrypted, der[len(der)-32:]) {
				t.Error("stored private key contains the clear PKCS#8")
			}

			back, err := OpenKey(kek, row)
			if err != nil {
				t.Fatalf("OpenKey: %v", err)
			}
			if back.ID != k.ID || back.Algorithm != alg || !bytes.Equal(mustPKCS8(t, back), der) {
				t.Error("OpenKey returned a different key")
			}

			next, err := k.Record(kek, storage.KeyNext, now, rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			if next.ActivatedAt != nil {
				t.Error("a next key has ActivatedAt")
			}
		})
	}
}

func TestGenerateUnsupported(t *testing.T) {
	for _, alg := range []string{"", "none", "HS256", "RS512", "PS256", "ES384", "rs256", "Ed25519"} {
		if _, err := Generate(alg, rand.Reader); !errors.Is(err, ErrUnsupportedAlgorithm) {
			t.Errorf("Generate(%q) = %v, want ErrUnsupportedAlgorithm", alg, err)
		}
	}
}

// TestOpenKeyRejectsInconsistentRows builds rows from parts of other rows,
// as someone with write access to the database might, and expects every one
// to be refused.
func TestOpenKeyRejectsInconsistentRows(t *testing.T) {
	kek := testKEK(t)
	now := time.Now()
	rowFor := func(alg string) storage.SigningKey {
		k, err := Generate(alg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		row, err := k.Record(kek, storage.KeyActive, now, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return row
	}
	a, b := rowFor(ES256), rowFor(ES256)
	rsaRow := rowFor(RS256)

	// A ciphertext encrypted for kid A but stored under A's kid with A's
	// public key relabeled: seal a different key under A's kid.
	c, err := Generate(ES256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := EncryptPrivateKey(kek, a.ID, ES256, c.priv, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name string
		row  func() storage.SigningKey
	}{
		{"ciphertext moved to another kid", func() storage.SigningKey { r := b; r.PrivateKeyEncrypted = a.PrivateKeyEncrypted; return r }},
		{"kid changed", func() storage.SigningKey { r := a; r.ID = b.ID; return r }},
		{"alg relabeled", func() storage.SigningKey { r := rsaRow; r.Algorithm = ES256; return r }},
		{"alg unsupported", func() storage.SigningKey { r := a; r.Algorithm = "HS256"; return r }},
		{"public jwk swapped", func() storage.SigningKey { r := a; r.PublicJWK = b.PublicJWK; return r }},
		{"public jwk garbage", func() storage.SigningKey { r := a; r.PublicJWK = []byte("{"); return r }},
		{"public jwk is private", func() storage.SigningKey {
			r := a
			k, _ := OpenKey(kek, a)
			priv := k.PublicJWK()
			priv.Key = k.priv
			r.PublicJWK, _ = json.Marshal(priv)
			return r
		}},
		{"other private key sealed under the kid", func() storage.SigningKey { r := a; r.PrivateKeyEncrypted = forged; return r }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := OpenKey(kek, tt.row()); err == nil {
				t.Fatal("OpenKey accepted the row")
			}
		})
	}
	if _, err := OpenKey(testKEK(t), a); err == nil || !strings.Contains(err.Error(), "wrong key-encryption key") {
		t.Errorf("OpenKey with another KEK: %v", err)
	}
	if _, err := OpenKey(kek, a); err != nil {
		t.Errorf("the untouched row does not open: %v", err)
	}
}

func TestKeyPairNeverPrintsPrivateKey(t *testing.T) {
	k, err := Generate(RS256, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	d := k.priv.(*rsa.PrivateKey).D.String()
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("x", "key", k)
	for _, out := range []string{fmt.Sprintf("%v %+v %#v %s %d", k, k, k, k, k), buf.String()} {
		if strings.Contains(out, d[:20]) {
			t.Fatalf("private exponent printed: %s", out)
		}
		if !strings.Contains(out, k.ID) {
			t.Errorf("output %q does not name the kid", out)
		}
	}
}

func mustPKCS8(t *testing.T, k *KeyPair) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return der
}
