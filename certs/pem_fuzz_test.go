package certs

import (
	"bytes"
	"testing"
)

// What the Secrets hold is read by rotate; whatever it is, reading it
// neither panics nor loses a certificate it accepted.
func FuzzParseSecretContents(f *testing.F) {
	// More seeds in testdata/fuzz: a CA with its key, two certificates
	// with a broken key (fixed bytes: seeds must be the same in every
	// fuzzing worker).
	f.Add([]byte("not pem"), []byte{})
	f.Fuzz(func(t *testing.T, certPEM, keyPEM []byte) {
		cs, err := ParseCerts(certPEM)
		if err == nil {
			again, err := ParseCerts(EncodeCerts(cs))
			if err != nil || len(again) != len(cs) {
				t.Fatalf("a bundle of %d read back as %d: %v", len(cs), len(again), err)
			}
			for i := range cs {
				if !bytes.Equal(cs[i].Raw, again[i].Raw) {
					t.Fatalf("certificate %d changed on the way back", i)
				}
			}
		}
		if kp, err := ParseKeyPair(certPEM, keyPEM); err == nil && (kp.Cert == nil || kp.Key == nil) {
			t.Fatal("a key pair without its certificate or key")
		}
	})
}
