package devicegroup_test

import (
	"encoding/json"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/devicegroup"
	"github.com/rampartsec/rampart/internal/cli/product"
)

func TestDeviceGroupVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command, devicegroup.Command), srv, srv.Admin)
	c.OK("product", "create", "lamp")
	c.OK("device-group", "create", "--product", "lamp", "Canary", "--description", "first 1 %")
	var gs []client.Group
	if err := json.Unmarshal([]byte(c.OK("device-group", "list", "--product", "lamp", "-o", "json")), &gs); err != nil || len(gs) != 4 {
		t.Fatalf("list = %+v, %v", gs, err)
	}
	if gs[0].Name != "Canary" || gs[0].Description != "first 1 %" {
		t.Errorf("first group = %+v", gs[0])
	}
	c.Fails("already exists", "device-group", "create", "--product", "lamp", "Canary")
	c.Fails("product nothing not found", "device-group", "create", "--product", "nothing", "Canary")
	c.Fails(`required flag(s) "product" not set`, "device-group", "list")
}
