package demo_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/demo"
	"github.com/rampartsec/rampart/internal/server"
)

// TestDemo plays the whole story with a small fleet through `rampart demo`, as a newcomer runs
// it, and checks the timeline, the record and the chart it leaves.
func TestDemo(t *testing.T) {
	t.Setenv("RAMPART_CONFIG", filepath.Join(t.TempDir(), "config.json")) // no saved login leaks in
	t.Setenv("RAMPART_TOKEN", "")
	dir := filepath.Join(t.TempDir(), "demo")
	var out, errb bytes.Buffer
	if code := cli.Run(context.Background(), []string{"demo", "--devices", "6", "--data", dir}, &out, &errb); code != 0 {
		t.Fatalf("rampart demo: exit %d\n%s\n%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"report 1 received", "1.0.0 revoked", "6 devices on 1.0.0 re-attested", "update-only certificates",
		"1.0.1 signed", "emergency deployment of 1.0.1", "50 % of the fleet on 1.0.1", "100 % of the fleet on 1.0.1",
		"every device runs 1.0.1", "Chart:", demo.ChartFile} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out.String())
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, demo.RecordFile))
	if err != nil {
		t.Fatal(err)
	}
	var rec demo.Record
	if err := json.Unmarshal(b, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Devices != 6 || rec.Fleet.Releases["1.0.1"] != 6 || rec.Fleet.UpdateOnly != 0 || len(rec.Coverage) == 0 ||
		rec.Coverage[len(rec.Coverage)-1].Share != 1 || len(rec.Milestones) != 4 {
		t.Errorf("record: %+v", rec)
	}
	// demo.json speaks seconds throughout, and its milestones are the figures the demo printed.
	for _, m := range rec.Milestones {
		printed := fmt.Sprintf("%.0f %% of the fleet on 1.0.1, %.1fs after the deployment", m.Percent, m.SecondsAfterDeployment)
		if !m.Reached || m.SecondsAfterDeployment <= 0 || m.SecondsAfterDeployment > rec.Seconds || !strings.Contains(out.String(), printed) {
			t.Errorf("milestone %+v: want reached, in seconds within the run's %.1f s, and printed as %q", m, rec.Seconds, printed)
		}
	}
	if !strings.Contains(string(b), `"seconds_after_deployment"`) || strings.Contains(string(b), `"after"`) {
		t.Errorf("demo.json milestones are not in seconds:\n%s", b)
	}
	// The run says how much it left where, and how to remove it.
	if rec.DirBytes <= 0 || !strings.Contains(out.String(), "Data:     "+dir+" holds ") || !strings.Contains(out.String(), "remove it with rm -rf "+dir) {
		t.Errorf("the demo does not say what it left in %s (%d bytes):\n%s", dir, rec.DirBytes, out.String())
	}
	svg, err := os.ReadFile(filepath.Join(dir, demo.ChartFile))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<svg", "report", "revoke", "deploy", "100 %", "</svg>"} {
		if !bytes.Contains(svg, []byte(want)) {
			t.Errorf("chart lacks %q", want)
		}
	}
	var csaf struct {
		Document struct{ Category string } `json:"document"`
	}
	if b, err := os.ReadFile(filepath.Join(dir, demo.AdvisoryFile)); err != nil || json.Unmarshal(b, &csaf) != nil || csaf.Document.Category == "" {
		t.Errorf("advisory: %v %+v", err, csaf)
	}

	// A second run into the same folder is refused rather than mixed with the first.
	out.Reset()
	errb.Reset()
	if code := cli.Run(context.Background(), []string{"demo", "--devices", "2", "--data", dir}, &out, &errb); code == 0 || errb.String() != "rampart: "+dir+" already holds a demo; give an empty --data folder\n" {
		t.Errorf("second demo into %s: exit %d, %q", dir, code, errb.String())
	}
}

// TestDemoServe: with --serve the demo, once its story is told, prints the console's address
// and a token that signs in, keeps serving until interrupted, and then stops cleanly.
func TestDemoServe(t *testing.T) {
	t.Setenv("RAMPART_CONFIG", filepath.Join(t.TempDir(), "config.json"))
	t.Setenv("RAMPART_TOKEN", "")
	dir := filepath.Join(t.TempDir(), "demo")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	var errb bytes.Buffer
	exit := make(chan int, 1)
	go func() {
		code := cli.Run(ctx, []string{"demo", "--devices", "3", "--data", dir, "--serve"}, pw, &errb)
		pw.Close()
		exit <- code
	}()
	lines := bufio.NewScanner(pr)
	var console, token, portal string
	var out strings.Builder
	for lines.Scan() {
		line := lines.Text()
		out.WriteString(line + "\n")
		f := strings.Fields(line)
		switch {
		case strings.HasPrefix(line, "Console:") && len(f) > 1:
			console = f[1]
		case strings.HasPrefix(line, "Token:") && len(f) > 1:
			token = f[1]
		case strings.HasPrefix(line, "Portal:") && len(f) > 1:
			portal = f[1]
		}
		if strings.HasPrefix(line, "Serving until interrupted") {
			break
		}
	}
	go io.Copy(io.Discard, pr) // the rest, so the demo never blocks on its output
	if console == "" || token == "" || !strings.HasSuffix(console, "/login") || !strings.HasSuffix(portal, "/research/login") ||
		!strings.Contains(out.String(), "every device runs 1.0.1") {
		t.Fatalf("the demo did not print where to sign in after its story:\n%s\n%s", out.String(), errb.String())
	}
	base := strings.TrimSuffix(console, "/login")
	c, err := client.New(base, client.WithToken(token), client.WithCAFile(filepath.Join(dir, "server", server.ServiceCAFile)))
	if err != nil {
		t.Fatal(err)
	}
	who, err := c.WhoAmI(ctx)
	if err != nil || who.Tenant != demo.Tenant || who.Role != "admin" {
		t.Fatalf("the printed token: %+v, %v", who, err)
	}
	// Still serving: the fleet is there and keeps its release.
	devs, err := c.ListDevices(ctx, client.DeviceFilter{}, client.ListOptions{})
	if err != nil || len(devs.Items) != 3 {
		t.Fatalf("devices while serving: %v, %v", devs, err)
	}
	cancel()
	if code := <-exit; code != 0 {
		t.Fatalf("interrupted demo exited %d: %s", code, errb.String())
	}
	if _, err := net.DialTimeout("tcp", strings.TrimPrefix(base, "https://"), time.Second); err == nil {
		t.Errorf("the server still listens on %s after the interrupt", base)
	}
}
