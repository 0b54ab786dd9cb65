// Package clitest runs CLI verbs in-process against a real server, the way a user in a fresh
// shell would run them. Only tests import it (the CLI's, and end-to-end tests that set a server up
// with the CLI's verbs).
package clitest

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/server"
)

// Server is a running server with its data folder.
type Server struct {
	URL     string
	Dir     string
	CAFile  string
	Admin   string         // the first admin token's secret; empty on a replica that did not make it
	Service *server.Server // the server itself, for tests that read its store
}

// Start runs a server on a free loopback port (SQLite, or PostgreSQL when database is set) until
// the test ends.
func Start(t testing.TB, database string) *Server {
	t.Helper()
	return StartConfig(t, func(c *server.Config) { c.Database = database })
}

// StartConfig is Start with the server's configuration changed by opts.
func StartConfig(t testing.TB, opts ...func(*server.Config)) *Server {
	t.Helper()
	dir := t.TempDir()
	addrc := make(chan net.Addr, 1)
	cfg := server.Config{DataDir: dir, Listen: "127.0.0.1:0", Ready: func(a net.Addr) { addrc <- a }}
	for _, o := range opts {
		o(&cfg)
	}
	dir = cfg.DataDir // an option may name a data folder of its own (a restored one)
	s, err := server.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	srv := &Server{Dir: dir, CAFile: filepath.Join(dir, server.ServiceCAFile), Service: s}
	select {
	case a := <-addrc:
		srv.URL = "https://" + a.String()
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	b, err := readFile(filepath.Join(dir, server.AdminTokenFile))
	if err != nil && !s.FirstStart {
		// A replica joining a database another server set up: the first token is in that
		// server's folder.
		return srv
	}
	if err != nil {
		t.Fatal(err)
	}
	srv.Admin = strings.TrimSpace(b)
	return srv
}

// Root builds the command tree for env; internal/cli sets it (tests of noun packages get the
// whole tree through CLI).
type Root func(env *clienv.Env) *cobra.Command

// CLI runs verbs with its own environment and config file.
type CLI struct {
	T      testing.TB
	Root   Root
	Config string
	Env    map[string]string
}

// New returns a CLI whose connection variables point at srv with token tok.
func New(t testing.TB, root Root, srv *Server, tok string) *CLI {
	return &CLI{T: t, Root: root, Config: filepath.Join(t.TempDir(), "config.json"),
		Env: map[string]string{"RAMPART_SERVER": srv.URL, "RAMPART_CA_FILE": srv.CAFile, "RAMPART_TOKEN": tok}}
}

// Run runs one command line and returns what it printed and its exit code.
func (c *CLI) Run(args ...string) (stdout, stderr string, code int) {
	c.T.Helper()
	var out, errb bytes.Buffer
	env := &clienv.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "RAMPART_CONFIG" {
			return c.Config
		}
		return c.Env[k]
	}}
	root := c.Root(env)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	code = clienv.Execute(context.Background(), root, &errb)
	return out.String(), errb.String(), code
}

// OK runs a command that must succeed and returns its standard output.
func (c *CLI) OK(args ...string) string {
	c.T.Helper()
	out, errs, code := c.Run(args...)
	if code != 0 {
		c.T.Fatalf("rampart %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

// Fails runs a command that must fail with one line on stderr that mentions want.
func (c *CLI) Fails(want string, args ...string) {
	c.T.Helper()
	_, errs, code := c.Run(args...)
	if code == 0 || !strings.Contains(errs, want) {
		c.T.Fatalf("rampart %s: exit %d, stderr %q; want failure mentioning %q", strings.Join(args, " "), code, errs, want)
	}
	if strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		c.T.Errorf("error is more than one line: %q", errs)
	}
}

// FailsWith runs a command that must fail (exit 1) and print exactly want on stderr, nothing on
// stdout.
func (c *CLI) FailsWith(want string, args ...string) {
	c.T.Helper()
	out, errs, code := c.Run(args...)
	if code != 1 || errs != want || out != "" {
		c.T.Fatalf("rampart %s: exit %d, stdout %q, stderr %q; want exit 1 and stderr %q", strings.Join(args, " "), code, out, errs, want)
	}
}

// Nouns builds a root command holding only the given nouns, with the global flags, for testing
// one noun package on its own.
func Nouns(nouns ...func(*clienv.Env) *cobra.Command) Root {
	return func(env *clienv.Env) *cobra.Command {
		root := &cobra.Command{Use: "rampart", SilenceUsage: true, SilenceErrors: true}
		env.AddFlags(root)
		for _, n := range nouns {
			root.AddCommand(n(env))
		}
		return root
	}
}
