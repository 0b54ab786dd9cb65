package ca_test

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/ca"
	"github.com/rampartsec/rampart/internal/cli/clitest"
)

func TestCAShow(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(ca.Command), srv, srv.Admin)
	out := c.OK("ca", "show")
	block, rest := pem.Decode([]byte(out))
	if block == nil || len(rest) != 0 {
		t.Fatalf("ca show printed %q, want exactly one PEM certificate", out)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil || !cert.IsCA {
		t.Fatalf("not a CA certificate: %v", err)
	}
	var info client.CA
	if err := json.Unmarshal([]byte(c.OK("ca", "show", "-o", "json")), &info); err != nil || info.PEM != out || info.Tenant != "default" {
		t.Fatalf("ca show -o json = %+v, %v", info, err)
	}
}
