package server_test

import (
	"net"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/server"
)

// The server verb's happy path runs in internal/server's and internal/cli's tests; here, its
// flag checks, which fail before anything is created.
func TestServerFlags(t *testing.T) {
	c := &clitest.CLI{T: t, Root: clitest.Nouns(server.Command), Config: t.TempDir() + "/c.json", Env: map[string]string{}}
	dir := t.TempDir()
	c.Fails(`--log-format "xml" is not text or json`, "server", "--data", dir, "--log-format", "xml")
	c.Fails(`--log-level "loud" is not debug, info, warn or error`, "server", "--data", dir, "--log-level", "loud")
	c.Fails("rampart: the database URL must start with postgres:// (leave it out for SQLite under the data folder)\n", "server", "--data", dir, "--listen", "127.0.0.1:0", "--database", "mysql://x")
	c.Fails("--tls-cert and --tls-key go together", "server", "--data", dir, "--listen", "127.0.0.1:0", "--tls-cert", "x.pem")
	// A port in use: one sentence naming the address and what to do.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, errs, code := c.Run("server", "--data", dir, "--listen", l.Addr().String())
	want := "rampart: cannot listen on " + l.Addr().String() + " (bind: address already in use); stop what uses it or give another --listen\n"
	if code != 1 || !strings.HasSuffix(errs, want) {
		t.Errorf("server on a port in use: exit %d, stderr %q; want it to end with %q", code, errs, want)
	}
}
