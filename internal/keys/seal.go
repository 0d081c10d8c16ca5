package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// nonceSize is the AES-GCM standard nonce length: 96 bits.
const nonceSize = 12

// aadLabel versions the additional authenticated data, so that a future
// change of what a ciphertext is bound to cannot be confused with this one.
const aadLabel = "gatehouse signing key v1"

// errDecrypt is deliberately vague: AES-GCM cannot tell a wrong KEK from a
// tampered or moved ciphertext, and neither should the message pretend to.
var errDecrypt = errors.New("decrypt private key: wrong key-encryption key, or the ciphertext was altered or belongs to another key")

// seal encrypts plaintext under k with AES-256-GCM and returns
// nonce || ciphertext (the ciphertext includes GCM's 16-byte tag). The nonce
// is 96 random bits from r. The additional authenticated data binds the
// result to kid and alg: a ciphertext copied into another key's row does not
// decrypt there.
//
// Random nonces are safe here: a KEK encrypts one ciphertext per signing key
// ever created, far below the 2^32 messages at which random 96-bit nonces
// start to risk a collision.
func seal(k KEK, kid, alg string, plaintext []byte, r io.Reader) ([]byte, error) {
	aead, err := k.aead()
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("encrypt private key: read nonce: %w", err)
	}
	return aead.Seal(out, out[:nonceSize], plaintext, additionalData(kid, alg)), nil
}

// open reverses seal. It fails if k is not the key seal used, if any byte
// of ciphertext changed, or if kid or alg differ from seal's.
func open(k KEK, kid, alg string, ciphertext []byte) ([]byte, error) {
	aead, err := k.aead()
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("decrypt private key: ciphertext too short (%d bytes)", len(ciphertext))
	}
	plaintext, err := aead.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], additionalData(kid, alg))
	if err != nil {
		return nil, errDecrypt
	}
	return plaintext, nil
}

func (k KEK) aead() (cipher.AEAD, error) {
	if k.IsZero() {
		return nil, errors.New("no key-encryption key configured")
	}
	block, err := aes.NewCipher(k.b[:])
	if err != nil {
		return nil, fmt.Errorf("aes: %w", err)
	}
	return cipher.NewGCM(block)
}

// additionalData encodes label, kid and alg, each prefixed by its length,
// so that no two distinct (kid, alg) pairs produce the same bytes whatever
// characters they contain.
func additionalData(kid, alg string) []byte {
	b := make([]byte, 0, 3*4+len(aadLabel)+len(kid)+len(alg))
	for _, s := range []string{aadLabel, kid, alg} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	return b
}
