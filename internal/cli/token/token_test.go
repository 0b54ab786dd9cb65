package token_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/token"
)

func TestTokenVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	root := clitest.Nouns(token.Command, product.Command)
	c := clitest.New(t, root, srv, srv.Admin)

	secret := strings.TrimSpace(c.OK("token", "create", "--role", "reader", "--description", "dashboard"))
	if !strings.HasPrefix(secret, "rpt_") || strings.Contains(secret, "\n") {
		t.Fatalf("token create printed %q, want only the secret", secret)
	}
	var created client.Token
	if err := json.Unmarshal([]byte(c.OK("token", "create", "--role", "operator", "-o", "json")), &created); err != nil || created.Secret == "" || created.Role != "operator" {
		t.Fatalf("token create -o json = %+v, %v", created, err)
	}
	list := c.OK("token", "list", "-o", "json")
	if strings.Contains(list, secret) || strings.Contains(list, created.Secret) {
		t.Fatal("token list shows a secret")
	}
	var toks []client.Token
	json.Unmarshal([]byte(list), &toks)
	if len(toks) != 3 {
		t.Fatalf("token list = %d tokens, want 3", len(toks))
	}

	reader := clitest.New(t, root, srv, secret)
	reader.OK("product", "list")
	reader.Fails("needs the operator role", "product", "create", "lamp")
	reader.Fails("needs the admin role", "token", "create", "--role", "admin")

	c.OK("token", "revoke", created.ID)
	c.Fails("already revoked (HTTP 409)", "token", "revoke", created.ID)
	clitest.New(t, root, srv, created.Secret).Fails("revoked (HTTP 401)", "product", "list")
	c.Fails("is not one of admin, operator, reader", "token", "create", "--role", "root")
}
