package device_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/device"
	"github.com/rampartsec/rampart/internal/cli/product"
)

func TestDeviceVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, device.Command), srv, srv.Admin)
	c.OK("product", "create", "lamp")
	// Enrolment and claiming arrive with attestation; register one device directly.
	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.Dir, "rampart.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	id := strings.Repeat("d", 64)
	if _, err := db.ExecContext(context.Background(), `INSERT INTO devices (id, tenant_id, product_id, group_id, state, attestation, current_release, target_release, created_at, updated_at)
		SELECT $1, p.tenant_id, p.id, g.id, 'claimed', 'affirming', '1.0.0', '', 1, 1 FROM products p JOIN device_groups g ON g.product_id = p.id
		WHERE p.name = 'lamp' AND g.name = 'Field Test'`, id); err != nil {
		t.Fatal(err)
	}
	var ds []client.Device
	if err := json.Unmarshal([]byte(c.OK("device", "list", "--product", "lamp", "--group", "Field Test", "-o", "json")), &ds); err != nil || len(ds) != 1 || ds[0].ID != id {
		t.Fatalf("list = %+v, %v", ds, err)
	}
	if out := c.OK("device", "list", "--product", "lamp", "--group", "Production"); strings.Contains(out, id) {
		t.Errorf("device shows in the wrong group:\n%s", out)
	}
	out := c.OK("device", "show", id)
	for _, want := range []string{"Field Test", "affirming", "1.0.0"} {
		if !strings.Contains(out, want) {
			t.Errorf("show lacks %q:\n%s", want, out)
		}
	}
	c.Fails("not found (HTTP 404)", "device", "show", strings.Repeat("e", 64))
	c.Fails("64 lowercase hex", "device", "show", "xyz")
	c.Fails("group needs product", "device", "list", "--group", "Production")
}
