package server

import (
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"
	"time"

	zx509 "github.com/zmap/zcrypto/x509"
	"github.com/zmap/zlint/v3"
	"github.com/zmap/zlint/v3/lint"
)

// TestServiceCertificatesFollowRFC5280 runs zlint's RFC 5280 lints over the service CA and the
// server certificate the server makes for itself: the server certificate once lacked a subject
// key identifier (the same defect as the device certificates).
func TestServiceCertificatesFollowRFC5280(t *testing.T) {
	dir := t.TempDir()
	c, _, err := serviceTLS(dir, "127.0.0.1", "", "", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	reg, err := lint.GlobalRegistry().Filter(lint.FilterOptions{IncludeSources: lint.SourceList{lint.RFC5280}})
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(filepath.Join(dir, ServiceCAFile))
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(caPEM)
	for name, der := range map[string][]byte{"server certificate": c.Certificate[0], "service CA": blk.Bytes} {
		zc, err := zx509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		for l, r := range zlint.LintCertificateEx(zc, reg).Results {
			if r.Status >= lint.Warn {
				t.Errorf("%s: %s %s %s", name, l, r.Status, r.Details)
			}
		}
	}
}
