package product_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/product"
)

func TestProductVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(product.Command), srv, srv.Admin)

	out := c.OK("product", "create", "thermostat", "--description", "smart thermostat")
	for _, g := range []string{"Development", "Field Test", "Production"} {
		if !strings.Contains(out, g) {
			t.Errorf("create output lacks %s:\n%s", g, out)
		}
	}
	c.OK("product", "create", "lamp")
	var ps []client.Product
	if err := json.Unmarshal([]byte(c.OK("product", "list", "-o", "json")), &ps); err != nil || len(ps) != 2 || ps[0].Name != "lamp" || ps[1].Description != "smart thermostat" {
		t.Fatalf("list = %+v, %v", ps, err)
	}
	var p client.Product
	if err := json.Unmarshal([]byte(c.OK("product", "show", "thermostat", "-o", "json")), &p); err != nil || len(p.Groups) != 3 {
		t.Fatalf("show = %+v, %v", p, err)
	}
	c.Fails("already exists (HTTP 409)", "product", "create", "lamp")
	c.Fails("product name", "product", "create", "a/b")
	c.Fails("product nothing not found (HTTP 404)", "product", "show", "nothing")
	c.Fails("accepts 1 arg", "product", "show")
}
