package clienv_test

import (
	"net"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/login"
	"github.com/rampartsec/rampart/internal/cli/product"
)

// TestConnectionMessages pins what a user sees when the connection itself is wrong: each is one
// sentence saying what to change.
func TestConnectionMessages(t *testing.T) {
	srv := clitest.Start(t, "")
	root := clitest.Nouns(login.Command, product.Command)
	c := clitest.New(t, root, srv, srv.Admin)
	host := strings.TrimPrefix(srv.URL, "https://")

	c.Env["RAMPART_SERVER"] = "http://" + host
	c.FailsWith("rampart: server answered 400 Bad Request to plain HTTP; Rampart speaks HTTPS: use https://"+host+" (HTTP 400)\n", "product", "list")

	c.Env["RAMPART_SERVER"] = host // no scheme
	c.FailsWith("rampart: server \""+host+"\" is not a URL: write it as https://"+host+"\n", "product", "list")

	c.Env["RAMPART_SERVER"] = srv.URL
	c.Env["RAMPART_CA_FILE"] = ""
	c.FailsWith("rampart: cannot verify the certificate of "+srv.URL+": pass --ca-file with the CA that signed it (the server's DATA/service-ca.pem)\n", "product", "list")

	// A port nobody listens on.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "https://" + l.Addr().String()
	l.Close()
	c.Env["RAMPART_SERVER"] = closed
	c.Env["RAMPART_CA_FILE"] = srv.CAFile
	c.FailsWith("rampart: nothing answers at "+closed+": is rampart server running there, and is --server right?\n", "product", "list")
}
