// Package certpool reads a file of PEM certificates (the server's service-ca.pem, say) into an
// x509 pool, for whatever connects to the server over TLS: the public client, the agent, the
// CLI's simulator, the demo, the load generator and tests. It uses the standard library only, so
// the agent may link it.
package certpool

import (
	"crypto/x509"
	"errors"
	"os"
)

// ErrNoCertificate is returned when a file holds no PEM certificate.
var ErrNoCertificate = errors.New("no PEM certificate")

// FromFile returns a pool of the PEM certificates in file. A file that cannot be read returns
// the *fs.PathError, which names it; a file without a certificate returns ErrNoCertificate.
// Callers add their own context (the flag or option that named the file).
func FromFile(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, ErrNoCertificate
	}
	return pool, nil
}
