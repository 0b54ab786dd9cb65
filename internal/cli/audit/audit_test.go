package audit_test

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/rampartsec/rampart/internal/cli/audit"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/product"
)

func TestAuditVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, audit.Command), srv, srv.Admin)
	c.OK("product", "create", "lamp")
	out := c.OK("audit", "list")
	for _, want := range []string{"tenant.create", "token.create", "product.create", "group.create"} {
		if !strings.Contains(out, want) {
			t.Errorf("audit list lacks %s:\n%s", want, out)
		}
	}
	if out := c.OK("audit", "list", "--action", "product.create"); strings.Contains(out, "group.create") || !strings.Contains(out, "lamp") {
		t.Errorf("--action filter:\n%s", out)
	}
	if out := c.OK("audit", "verify"); !strings.HasPrefix(out, "audit chain intact: 6 records") {
		t.Errorf("verify = %q", out)
	}
	db, _ := sql.Open("sqlite", "file:"+filepath.Join(srv.Dir, "rampart.db")+"?_pragma=busy_timeout(5000)")
	defer db.Close()
	if _, err := db.Exec(`DELETE FROM audit_records WHERE seq = 6`); err != nil {
		t.Fatal(err)
	}
	c.Fails("chain ends at record 5 but its head names record 6", "audit", "verify")
	if _, err := db.Exec(`DELETE FROM audit_records WHERE seq = 3`); err != nil {
		t.Fatal(err)
	}
	c.Fails("record 4 follows record 2", "audit", "verify")
}
