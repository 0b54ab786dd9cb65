package cli

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/server"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

// cli runs rampart in-process with its own config file, like a user in a fresh shell.
type cli struct {
	t      *testing.T
	config string
	env    map[string]string
}

func (c *cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	var out, errb bytes.Buffer
	env := &clienv.Env{Stdout: &out, Stderr: &errb, Getenv: func(k string) string {
		if k == "RAMPART_CONFIG" {
			return c.config
		}
		return c.env[k]
	}}
	root := Root(env)
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&errb)
	code = 0
	if err := root.ExecuteContext(context.Background()); err != nil {
		errb.WriteString("rampart: " + message(err) + "\n")
		code = 1
	}
	return out.String(), errb.String(), code
}

func (c *cli) ok(args ...string) string {
	c.t.Helper()
	out, errs, code := c.run(args...)
	if code != 0 {
		c.t.Fatalf("rampart %s: exit %d: %s", strings.Join(args, " "), code, errs)
	}
	return out
}

func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	_, errs, code := c.run(args...)
	if code == 0 || !strings.Contains(errs, want) {
		c.t.Fatalf("rampart %s: exit %d, stderr %q; want failure mentioning %q", strings.Join(args, " "), code, errs, want)
	}
	if strings.Count(strings.TrimSpace(errs), "\n") > 0 {
		c.t.Errorf("error is more than one line: %q", errs)
	}
}

func startServer(t *testing.T, dir, database string) string {
	t.Helper()
	addrc := make(chan net.Addr, 1)
	s, err := server.New(context.Background(), server.Config{DataDir: dir, Listen: "127.0.0.1:0", Database: database, Ready: func(a net.Addr) { addrc <- a }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	select {
	case a := <-addrc:
		return "https://" + a.String()
	case err := <-done:
		t.Fatal(err)
	case <-time.After(30 * time.Second):
		t.Fatal("server did not start")
	}
	return ""
}

// TestReadmeWalk follows the README's quick start on both databases: first product and its
// groups, a second tenant whose admin sees and changes none of the first tenant's data, and
// audit verify passing, then failing once a row is altered in the database.
func TestReadmeWalk(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			database := ""
			if kind == "postgres" {
				database = storetest.PostgresURL(t)
			}
			url := startServer(t, dir, database)
			c := &cli{t: t, config: filepath.Join(t.TempDir(), "config.json")}

			c.fails("no server given", "product", "list")
			c.ok("login", "--server", url, "--ca-file", filepath.Join(dir, "service-ca.pem"), "--token-file", filepath.Join(dir, "admin.token"))

			out := c.ok("product", "create", "thermostat")
			for _, g := range []string{"Development", "Field Test", "Production"} {
				if !strings.Contains(out, g) {
					t.Errorf("product create output lacks group %s:\n%s", g, out)
				}
			}
			var groups []client.Group
			if err := json.Unmarshal([]byte(c.ok("device-group", "list", "--product", "thermostat", "--output", "json")), &groups); err != nil || len(groups) != 3 {
				t.Fatalf("device-group list json = %v, %v", groups, err)
			}
			c.ok("device-group", "create", "--product", "thermostat", "Canary")
			c.fails("product thermostat already exists", "product", "create", "thermostat")

			c.ok("tenant", "create", "globex")
			if out := c.ok("tenant", "list"); !strings.Contains(out, "globex") || !strings.Contains(out, "default") {
				t.Errorf("tenant list:\n%s", out)
			}
			secret := strings.TrimSpace(c.ok("token", "create", "--tenant", "globex", "--role", "admin"))

			// The second tenant's admin, with flags instead of the saved login.
			g := &cli{t: t, config: filepath.Join(t.TempDir(), "none.json"), env: map[string]string{
				"RAMPART_SERVER": url, "RAMPART_CA_FILE": filepath.Join(dir, "service-ca.pem"), "RAMPART_TOKEN": secret}}
			if out := g.ok("product", "list", "--output", "json"); strings.TrimSpace(out) != "null" && strings.TrimSpace(out) != "[]" {
				t.Errorf("tenant globex sees products: %s", out)
			}
			g.fails("product thermostat not found", "product", "show", "thermostat")
			g.fails("product thermostat not found", "device-group", "create", "--product", "thermostat", "Evil")
			g.fails("service administrator", "tenant", "list")
			g.fails("another tenant", "token", "create", "--tenant", "default", "--role", "admin")
			if out := g.ok("audit", "list"); strings.Contains(out, "thermostat") {
				t.Errorf("tenant globex reads default's audit:\n%s", out)
			}
			g.ok("product", "create", "thermostat") // its own, of the same name
			if out := c.ok("product", "show", "thermostat", "-o", "json"); !strings.Contains(out, "Canary") {
				t.Errorf("default's product changed:\n%s", out)
			}

			if out := c.ok("audit", "verify"); !strings.Contains(out, "intact") {
				t.Errorf("audit verify: %s", out)
			}
			if out := c.ok("audit", "list", "--action", "product.create"); !strings.Contains(out, "thermostat") {
				t.Errorf("audit list --action:\n%s", out)
			}

			// Alter one row behind the server's back: verify must now fail.
			db := openDB(t, kind, dir, database)
			var tenantID string
			if err := db.QueryRow(`SELECT id FROM tenants WHERE name = 'default'`).Scan(&tenantID); err != nil {
				t.Fatal(err)
			}
			if _, err := db.Exec(`UPDATE audit_records SET actor = 'someone-else' WHERE tenant_id = $1 AND action = 'product.create'`, tenantID); err != nil {
				t.Fatal(err)
			}
			c.fails("was altered", "audit", "verify")
			// The other tenant's chain is untouched.
			g.ok("audit", "verify")

			// Revoking a token stops it at once.
			var toks []client.Token
			json.Unmarshal([]byte(g.ok("token", "list", "-o", "json")), &toks)
			if len(toks) != 1 {
				t.Fatalf("globex tokens = %+v", toks)
			}
			g.ok("token", "revoke", toks[0].ID)
			g.fails("revoked", "product", "list")
		})
	}
}

func openDB(t *testing.T, kind, dir, database string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite", "file:"+filepath.Join(dir, "rampart.db")+"?_pragma=busy_timeout(5000)"
	if kind == "postgres" {
		driver, dsn = "pgx", database
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestOutputFlag(t *testing.T) {
	dir := t.TempDir()
	url := startServer(t, dir, "")
	c := &cli{t: t, config: filepath.Join(t.TempDir(), "c.json"), env: map[string]string{
		"RAMPART_SERVER": url, "RAMPART_CA_FILE": filepath.Join(dir, "service-ca.pem")}}
	c.fails("no API token given", "product", "list")
	c.env["RAMPART_TOKEN"] = "rpt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	c.fails("not valid (HTTP 401)", "product", "list")
	c.fails("--output \"yaml\" is not table or json", "product", "list", "--token-file", filepath.Join(dir, "admin.token"), "-o", "yaml")
	c.fails("accepts 1 arg", "product", "create")
	c.fails("required flag(s) \"role\" not set", "token", "create", "--token-file", filepath.Join(dir, "admin.token"))
}
