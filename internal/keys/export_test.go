package keys

import "crypto"

// PrivateKeyForTest lets the external tests sign with a key the Manager
// does not know (or has revoked), as an attacker who stole one would.
func PrivateKeyForTest(k *KeyPair) crypto.Signer { return k.priv }
