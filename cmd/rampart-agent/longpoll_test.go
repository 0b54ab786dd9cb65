package main

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/testenv"
)

// TestRealAgentReturnsToTheLongPoll runs a real rampart-agent process (`run --interval 1h`)
// against the server through a proxy. While it holds its long-poll the proxy cuts the
// connection and refuses new ones, as a server restart or a network partition would; the agent
// retries with backoff (doc/agent.md), holds the long-poll again once the path heals, and a
// deployment created then reaches it at once rather than after its hour.
func TestRealAgentReturnsToTheLongPoll(t *testing.T) {
	f, p, a := startProxiedAgent(t)
	ctx := context.Background()
	hub := f.Service.Wake()
	testenv.WaitFor(t, "the agent on its long-poll", func() bool { return hub.Waiting() == 1 })

	p.Down()
	testenv.WaitFor(t, "the agent off its long-poll, trying again", func() bool { return hub.Waiting() == 0 && p.Refused() >= 2 })
	p.Up()
	testenv.WaitFor(t, "the agent back on its long-poll", func() bool { return hub.Waiting() == 1 })

	f.CLI.OK("deployment", "create", "--product", "lamp", "--group", "Production", "--release", "1.0.0", "--emergency")
	testenv.WaitFor(t, "the device on 1.0.0", func() bool {
		d, err := f.API.GetDevice(ctx, a.id)
		if err != nil {
			t.Fatal(err)
		}
		return d.CurrentRelease == "1.0.0"
	})
}

// TestRealAgentHealsOnTwoConnections runs a real rampart-agent process through a proxy that
// counts its connections and deploys a fix while it holds its long-poll: the connection of the
// long-poll serves the whole check-in (director and repository metadata, the image, the install
// reports), and after the reboot it opens two, one with its old certificate for the challenge
// and the evidence, one with the new certificate, which carries the long-poll again. Each
// connection is a TLS handshake for the server; before the updater read the 404 of its "is
// there a newer root?" probes, each probe cost its connection (doc/benchmarks.md).
func TestRealAgentHealsOnTwoConnections(t *testing.T) {
	f, p, a := startProxiedAgent(t)
	ctx := context.Background()
	hub := f.Service.Wake()
	var deployment string
	deploy := func(version string) { // through the API, which wakes the device, superseding the last
		t.Helper()
		if deployment != "" {
			if _, err := f.API.ActOnDeployment(ctx, deployment, "abort", client.DeploymentActionRequest{Reason: "superseded"}); err != nil {
				t.Fatal(err)
			}
		}
		d, err := f.API.CreateDeployment(ctx, client.CreateDeploymentRequest{Product: "lamp", Group: "Production", Release: version, Emergency: true})
		if err != nil {
			t.Fatal(err)
		}
		deployment = d.ID
	}
	healed := func(version string) {
		t.Helper()
		testenv.WaitFor(t, "the device on "+version+", back on its long-poll", func() bool {
			d, err := f.API.GetDevice(ctx, a.id)
			if err != nil {
				t.Fatal(err)
			}
			return d.CurrentRelease == version && hub.Waiting() == 1
		})
	}
	testenv.WaitFor(t, "the agent on its long-poll", func() bool { return hub.Waiting() == 1 })
	deploy("1.0.0")
	healed("1.0.0")

	f.Release(t, "1.0.1", []byte(strings.Repeat("release 1.0.1\n", 4096)))
	before := p.Opened()
	deploy("1.0.1")
	healed("1.0.1")
	if n := p.Opened() - before; n != 2 {
		t.Errorf("the heal opened %d connections to the server; want 2 (after the reboot: the attestation's and the new certificate's)", n)
	}
}

// startProxiedAgent starts a server with release 1.0.0 and a real rampart-agent process that
// reaches it through a proxy, enrolled, claimed into lamp/Production and running.
func startProxiedAgent(t *testing.T) (*clitest.Fleet, *testenv.Proxy, *realAgent) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the agent and runs it")
	}
	bin := buildAgent(t)
	f := clitest.StartFleet(t, cli.Root)
	f.Release(t, "1.0.0", []byte(strings.Repeat("release 1.0.0\n", 4096)))
	u, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := testenv.StartProxy(t, u.Host)
	a := &realAgent{bin: bin, server: "https://" + p.Addr(), caFile: f.CAFile, state: t.TempDir()}
	a.id = strings.TrimSpace(a.run(t, "enroll"))
	if _, err := f.API.ClaimDevice(context.Background(), a.id, client.ClaimDeviceRequest{Product: "lamp", Group: "Production"}); err != nil {
		t.Fatal(err)
	}
	a.start(t)
	return f, p, a
}
