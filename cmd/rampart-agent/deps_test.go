package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/testenv"
)

// forbidden are packages the agent must never link: databases, the server, the admin API,
// the CLI, metrics and web templates. The agent runs on small devices and its attack surface
// should be what it needs.
var forbidden = []string{
	"database/sql",
	"modernc.org/",
	"github.com/jackc/",
	"github.com/prometheus/",
	"github.com/spf13/cobra",
	"html/template",
	"net/http/pprof",
	"github.com/google/go-tpm-tools/simulator", // cgo; only in builds with -tags simulator
	"github.com/rampartsec/rampart/internal/store",
	"github.com/rampartsec/rampart/internal/api",
	"github.com/rampartsec/rampart/internal/server",
	"github.com/rampartsec/rampart/internal/cli",
	// The server's side of the device API; the agent shares only internal/deviceapi with it.
	"github.com/rampartsec/rampart/internal/attest",
	"github.com/rampartsec/rampart/internal/failure",
	"github.com/rampartsec/rampart/internal/release",
	"github.com/rampartsec/rampart/internal/tuf",
}

func goTool(t *testing.T) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command", "install Go and put it on PATH")
	}
	return gobin
}

func TestAgentDependencies(t *testing.T) {
	out, err := exec.Command(goTool(t), "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list returned %d packages; the check would prove nothing", len(deps))
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) {
				t.Errorf("rampart-agent links %s (forbidden prefix %s)", d, f)
			}
		}
	}
}

// TestAgentCrossCompiles builds the agent without cgo for the device architectures.
func TestAgentCrossCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("cross-compiling is slow; skipped in -short mode")
	}
	gobin := goTool(t)
	for _, target := range []struct{ arch, arm string }{{"arm64", ""}, {"arm", "7"}} {
		t.Run(target.arch, func(t *testing.T) {
			cmd := exec.Command(gobin, "build", "-o", os.DevNull, ".")
			cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+target.arch, "GOARM="+target.arm)
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("build for %s: %v\n%s", target.arch, err, out)
			}
		})
	}
}
