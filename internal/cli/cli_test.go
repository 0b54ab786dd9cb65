package cli

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/store/storetest"
)

func newCLI(t *testing.T, env map[string]string) *clitest.CLI {
	return &clitest.CLI{T: t, Root: Root, Config: filepath.Join(t.TempDir(), "config.json"), Env: env}
}

// TestReadmeWalk follows the README's quick start on both databases: first product and its
// groups, a second tenant whose admin sees and changes none of the first tenant's data, and
// audit verify passing, then failing once a row is altered in the database.
func TestReadmeWalk(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) {
			database := ""
			if kind == "postgres" {
				database = storetest.PostgresURL(t)
			}
			srv := clitest.Start(t, database)
			dir, url := srv.Dir, srv.URL
			c := newCLI(t, map[string]string{})

			c.Fails("no server given", "product", "list")
			c.OK("login", "--server", url, "--ca-file", filepath.Join(dir, "service-ca.pem"), "--token-file", filepath.Join(dir, "admin.token"))

			out := c.OK("product", "create", "thermostat")
			for _, g := range []string{"Development", "Field Test", "Production"} {
				if !strings.Contains(out, g) {
					t.Errorf("product create output lacks group %s:\n%s", g, out)
				}
			}
			var groups []client.Group
			if err := json.Unmarshal([]byte(c.OK("device-group", "list", "--product", "thermostat", "--output", "json")), &groups); err != nil || len(groups) != 3 {
				t.Fatalf("device-group list json = %v, %v", groups, err)
			}
			c.OK("device-group", "create", "--product", "thermostat", "Canary")
			c.Fails("product thermostat already exists", "product", "create", "thermostat")

			c.OK("tenant", "create", "globex")
			if out := c.OK("tenant", "list"); !strings.Contains(out, "globex") || !strings.Contains(out, "default") {
				t.Errorf("tenant list:\n%s", out)
			}
			secret := strings.TrimSpace(c.OK("token", "create", "--tenant", "globex", "--role", "admin"))

			// The second tenant's admin, with flags instead of the saved login.
			g := clitest.New(t, Root, srv, secret)
			if out := g.OK("product", "list", "--output", "json"); strings.TrimSpace(out) != "null" && strings.TrimSpace(out) != "[]" {
				t.Errorf("tenant globex sees products: %s", out)
			}
			// An empty listing says so rather than printing a bare header.
			if out := g.OK("product", "list"); out != "no products yet (rampart product create NAME)\n" {
				t.Errorf("tenant globex's empty product list: %q", out)
			}
			g.Fails("product thermostat not found", "product", "show", "thermostat")
			g.Fails("product thermostat not found", "device-group", "create", "--product", "thermostat", "Evil")
			g.Fails("service administrator", "tenant", "list")
			g.Fails("another tenant", "token", "create", "--tenant", "default", "--role", "admin")
			if out := g.OK("audit", "list"); strings.Contains(out, "thermostat") {
				t.Errorf("tenant globex reads default's audit:\n%s", out)
			}
			g.OK("product", "create", "thermostat") // its own, of the same name
			if out := c.OK("product", "show", "thermostat", "-o", "json"); !strings.Contains(out, "Canary") {
				t.Errorf("default's product changed:\n%s", out)
			}

			if out := c.OK("ca", "show"); !strings.HasPrefix(out, "-----BEGIN CERTIFICATE-----") {
				t.Errorf("ca show: %q", out)
			}
			if a, b := c.OK("ca", "show"), g.OK("ca", "show"); a == b {
				t.Error("two tenants print the same CA")
			}
			if out := c.OK("audit", "verify"); !strings.Contains(out, "intact") {
				t.Errorf("audit verify: %s", out)
			}
			if out := c.OK("audit", "list", "--action", "product.create"); !strings.Contains(out, "thermostat") {
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
			c.Fails("was altered", "audit", "verify")
			// As JSON the broken chain still counts its records, and says how many check out.
			var total int
			if err := db.QueryRow(`SELECT COUNT(*) FROM audit_records WHERE tenant_id = $1`, tenantID).Scan(&total); err != nil {
				t.Fatal(err)
			}
			out, errs, code := c.Run("audit", "verify", "-o", "json")
			var v client.AuditVerification
			if err := json.Unmarshal([]byte(out), &v); err != nil || code != 1 || v.Intact || v.Records != int64(total) || v.Verified < 1 ||
				v.Verified >= v.Records || !strings.Contains(v.Problem, "was altered") || !strings.Contains(errs, fmt.Sprintf("%d of the chain's %d records check out", v.Verified, total)) {
				t.Errorf("audit verify -o json on a broken chain: exit %d, %+v (%v), stderr %q; want %d records", code, v, err, errs, total)
			}
			// The other tenant's chain is untouched.
			g.OK("audit", "verify")

			// Revoking a token stops it at once.
			var toks []client.Token
			json.Unmarshal([]byte(g.OK("token", "list", "-o", "json")), &toks)
			if len(toks) != 1 {
				t.Fatalf("globex tokens = %+v", toks)
			}
			g.OK("token", "revoke", toks[0].ID)
			g.Fails("revoked", "product", "list")
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
	srv := clitest.Start(t, "")
	c := clitest.New(t, Root, srv, "")
	c.Fails("no API token given", "product", "list")
	c.Env["RAMPART_TOKEN"] = "rpt_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	c.Fails("not valid (HTTP 401)", "product", "list")
	c.Fails("--output \"yaml\" is not table or json", "product", "list", "--token", srv.Admin, "-o", "yaml")
	c.Fails("accepts 1 arg", "product", "create")
	c.Fails("required flag(s) \"role\" not set", "token", "create", "--token", srv.Admin)
}

// TestMistypedVerbFails pins what a typo does: exit 1 with "unknown command" and a suggestion,
// under every noun as at the root; a noun alone still prints its help and exits 0.
func TestMistypedVerbFails(t *testing.T) {
	c := newCLI(t, map[string]string{})
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"release", "lst"}, `unknown command "lst" for "rampart release"; did you mean list?`},
		{[]string{"bogus"}, `unknown command "bogus" for "rampart"`},
		{[]string{"deployment", "craete"}, `did you mean create?`},
		{[]string{"-v"}, `unknown shorthand flag: 'v'`},
	} {
		c.Fails(tc.want, tc.args...)
	}
	out, _, code := c.Run("release")
	if code != 0 || !strings.Contains(out, "Available Commands") {
		t.Errorf("rampart release: exit %d, %q; want its help", code, out)
	}
	if out := c.OK("--version"); !strings.HasPrefix(out, "rampart version ") {
		t.Errorf("rampart --version = %q", out)
	}
}
