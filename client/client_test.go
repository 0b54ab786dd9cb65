package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/public"
)

// TestNewSentences pins what the CLI prints on its last line when the client cannot be made:
// what is wrong and what to pass, with no function names.
func TestNewSentences(t *testing.T) {
	dir := t.TempDir()
	missing, empty := filepath.Join(dir, "missing.pem"), filepath.Join(dir, "empty.pem")
	if err := os.WriteFile(empty, []byte("junk\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, server, ca, want string
	}{
		{"missing CA file", "https://127.0.0.1:8443", missing, "cannot read the CA file: open " + missing + ": no such file or directory"},
		{"CA file without a certificate", "https://127.0.0.1:8443", empty, "the CA file " + empty + " holds no PEM certificate; pass the CA that signed the server's certificate (the server's DATA/service-ca.pem)"},
		{"server without a scheme", "127.0.0.1:8443", empty, `server "127.0.0.1:8443" is not a URL; write it as https://HOST:PORT`},
	} {
		_, err := New(tc.server, WithCAFile(tc.ca))
		if msg, ok := public.Message(err); !ok || msg != tc.want {
			t.Errorf("%s: New = %v; sentence %q (%v), want %q", tc.name, err, msg, ok, tc.want)
		}
	}
}
