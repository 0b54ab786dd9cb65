package tenant_test

import (
	"encoding/json"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/tenant"
	"github.com/rampartsec/rampart/internal/cli/token"
)

func TestTenantVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(tenant.Command, token.Command), srv, srv.Admin)
	c.OK("tenant", "create", "globex")
	var ts []client.Tenant
	if err := json.Unmarshal([]byte(c.OK("tenant", "list", "-o", "json")), &ts); err != nil || len(ts) != 2 {
		t.Fatalf("list = %+v, %v", ts, err)
	}
	c.Fails("tenant globex already exists", "tenant", "create", "globex")
	c.Fails("tenant name", "tenant", "create", "Not Valid")
	// A tenant administrator may not manage tenants.
	g := clitest.New(t, clitest.Nouns(tenant.Command), srv, globexAdmin(c))
	g.Fails("service administrator's token (HTTP 403)", "tenant", "create", "initech")
	g.Fails("service administrator's token (HTTP 403)", "tenant", "list")
}

func globexAdmin(c *clitest.CLI) string {
	out := c.OK("token", "create", "--tenant", "globex", "--role", "admin")
	return out[:len(out)-1]
}
