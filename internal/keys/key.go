package keys

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-idp/gatehouse/internal/storage"
)

// Supported signing algorithms (JWS "alg" values).
const (
	RS256 = "RS256" // RSASSA-PKCS1-v1_5 with SHA-256, RSA-2048; required by OIDC
	ES256 = "ES256" // ECDSA on P-256 with SHA-256
	EdDSA = "EdDSA" // Ed25519 (RFC 8037)
)

// RSABits is the size of generated RSA keys. DESIGN.md ("Scale"): 2048 bits;
// a 4096-bit key costs about 6× per signature for no practical gain here.
const RSABits = 2048

// algorithms lists the supported algorithms in the order Algorithms reports
// them: RS256 first because OIDC requires it.
var algorithms = []string{RS256, ES256, EdDSA}

var joseAlgorithms = []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA}

// SupportedAlgorithms returns every algorithm this package can generate,
// sign and verify with, RS256 first.
func SupportedAlgorithms() []string {
	return append([]string(nil), algorithms...)
}

// ErrUnsupportedAlgorithm is returned for an alg other than RS256, ES256
// and EdDSA.
var ErrUnsupportedAlgorithm = errors.New("unsupported signing algorithm")

func checkAlgorithm(alg string) error {
	switch alg {
	case RS256, ES256, EdDSA:
		return nil
	}
	return fmt.Errorf("%w %q (want RS256, ES256 or EdDSA)", ErrUnsupportedAlgorithm, alg)
}

// KeyPair is a signing key in memory: its kid, algorithm and private key.
// The private key is not exported; printing or logging a KeyPair shows
// only kid and alg.
type KeyPair struct {
	// ID is the kid: the RFC 7638 JWK thumbprint (SHA-256, base64url) of
	// the public key. Being derived from the key, it is the same on every
	// replica and cannot name two different keys.
	ID        string
	Algorithm string
	priv      crypto.Signer // *rsa.PrivateKey, *ecdsa.PrivateKey or ed25519.PrivateKey
}

// Generate makes a new key pair for alg: RSA-2048 for RS256, P-256 for
// ES256, Ed25519 for EdDSA. Randomness is read from r for Ed25519; since
// Go 1.26 RSA and ECDSA key generation always use the system's secure
// random source and ignore r.
func Generate(alg string, r io.Reader) (*KeyPair, error) {
	if err := checkAlgorithm(alg); err != nil {
		return nil, err
	}
	var priv crypto.Signer
	var err error
	switch alg {
	case RS256:
		priv, err = rsa.GenerateKey(r, RSABits)
	case ES256:
		priv, err = ecdsa.GenerateKey(elliptic.P256(), r)
	case EdDSA:
		_, priv, err = ed25519.GenerateKey(r)
	}
	if err != nil {
		return nil, fmt.Errorf("generate %s key: %w", alg, err)
	}
	return newKeyPair(alg, priv)
}

func newKeyPair(alg string, priv crypto.Signer) (*KeyPair, error) {
	if err := checkKeyType(alg, priv); err != nil {
		return nil, err
	}
	kid, err := Thumbprint(priv.Public())
	if err != nil {
		return nil, err
	}
	return &KeyPair{ID: kid, Algorithm: alg, priv: priv}, nil
}

// checkKeyType rejects a private key that does not belong to alg, so that
// neither a bug nor an edited row can make, say, an RS256 key sign ES256.
func checkKeyType(alg string, priv crypto.Signer) error {
	switch alg {
	case RS256:
		if k, ok := priv.(*rsa.PrivateKey); ok {
			if k.N.BitLen() < 2048 {
				return fmt.Errorf("RS256 key has %d bits, want at least 2048", k.N.BitLen())
			}
			return nil
		}
	case ES256:
		if k, ok := priv.(*ecdsa.PrivateKey); ok {
			if k.Curve != elliptic.P256() {
				return fmt.Errorf("ES256 key is on curve %s, want P-256", k.Curve.Params().Name)
			}
			return nil
		}
	case EdDSA:
		if _, ok := priv.(ed25519.PrivateKey); ok {
			return nil
		}
	default:
		return checkAlgorithm(alg)
	}
	return fmt.Errorf("%s key has the wrong type %T", alg, priv)
}

// Thumbprint returns the RFC 7638 JWK thumbprint of a public key: SHA-256
// over the key's required JWK members, base64url without padding.
func Thumbprint(pub crypto.PublicKey) (string, error) {
	jwk := jose.JSONWebKey{Key: pub}
	sum, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", fmt.Errorf("jwk thumbprint: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sum), nil
}

// Public returns the public key.
func (k *KeyPair) Public() crypto.PublicKey { return k.priv.Public() }

// PublicJWK returns the public key as a JWK with kid, alg and use "sig".
func (k *KeyPair) PublicJWK() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.ID, Algorithm: k.Algorithm, Use: "sig"}
}

// String shows kid and alg, never the private key.
func (k *KeyPair) String() string { return "keys.KeyPair{kid=" + k.ID + " alg=" + k.Algorithm + "}" }

// GoString is String, so %#v does not dump the private key.
func (k *KeyPair) GoString() string { return k.String() }

// Format implements fmt.Formatter so that no verb prints the private key.
func (k *KeyPair) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }

// LogValue implements slog.LogValuer: kid and alg only.
func (k *KeyPair) LogValue() slog.Value {
	return slog.GroupValue(slog.String("kid", k.ID), slog.String("alg", k.Algorithm))
}

// Record encrypts the key under kek and returns the row to store: the
// private key as PKCS#8 DER sealed with AES-256-GCM (bound to kid and alg),
// the public JWK, and CreatedAt = now. ActivatedAt is set to now when state
// is active; other lifecycle timestamps are the caller's business. The
// encryption nonce is read from r.
func (k *KeyPair) Record(kek KEK, state storage.KeyState, now time.Time, r io.Reader) (storage.SigningKey, error) {
	enc, err := EncryptPrivateKey(kek, k.ID, k.Algorithm, k.priv, r)
	if err != nil {
		return storage.SigningKey{}, err
	}
	pub, err := json.Marshal(k.PublicJWK())
	if err != nil {
		return storage.SigningKey{}, fmt.Errorf("marshal public jwk: %w", err)
	}
	row := storage.SigningKey{
		ID:                  k.ID,
		Algorithm:           k.Algorithm,
		State:               state,
		PrivateKeyEncrypted: enc,
		PublicJWK:           pub,
		CreatedAt:           now,
	}
	if state == storage.KeyActive {
		t := now
		row.ActivatedAt = &t
	}
	return row, nil
}

// EncryptPrivateKey serializes priv as PKCS#8 DER and encrypts it under kek
// with AES-256-GCM, bound to kid and alg. The result is nonce || ciphertext;
// the 96-bit nonce is read from r.
func EncryptPrivateKey(kek KEK, kid, alg string, priv crypto.Signer, r io.Reader) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encrypt private key: marshal pkcs8: %w", err)
	}
	defer clear(der)
	return seal(kek, kid, alg, der, r)
}

// DecryptPrivateKey reverses EncryptPrivateKey. It fails if kek is wrong,
// the ciphertext was altered, or kid or alg differ from those it was
// encrypted for.
func DecryptPrivateKey(kek KEK, kid, alg string, ciphertext []byte) (crypto.Signer, error) {
	der, err := open(kek, kid, alg, ciphertext)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return nil, fmt.Errorf("decrypt private key: parse pkcs8: %w", err)
	}
	priv, ok := parsed.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("decrypt private key: %T is not a signing key", parsed)
	}
	return priv, nil
}

// OpenKey decrypts a stored key and checks that the row is consistent: the
// algorithm is supported and matches the key type, the kid is the
// thumbprint of the decrypted key, and the stored public JWK is that key's
// public half with the same kid and alg. A row assembled from parts of
// other rows fails here.
func OpenKey(kek KEK, row storage.SigningKey) (*KeyPair, error) {
	if err := checkAlgorithm(row.Algorithm); err != nil {
		return nil, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	priv, err := DecryptPrivateKey(kek, row.ID, row.Algorithm, row.PrivateKeyEncrypted)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	k, err := newKeyPair(row.Algorithm, priv)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	if k.ID != row.ID {
		return nil, fmt.Errorf("signing key %s: kid is not the thumbprint of its private key", row.ID)
	}
	var pub jose.JSONWebKey
	if err := json.Unmarshal(row.PublicJWK, &pub); err != nil {
		return nil, fmt.Errorf("signing key %s: parse public jwk: %w", row.ID, err)
	}
	if !pub.IsPublic() {
		return nil, fmt.Errorf("signing key %s: stored jwk is not a public key", row.ID)
	}
	tp, err := Thumbprint(pub.Key)
	if err != nil {
		return nil, fmt.Errorf("signing key %s: %w", row.ID, err)
	}
	if tp != row.ID || pub.KeyID != row.ID || pub.Algorithm != row.Algorithm {
		return nil, fmt.Errorf("signing key %s: stored public jwk does not match the private key", row.ID)
	}
	return k, nil
}
