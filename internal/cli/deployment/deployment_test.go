package deployment_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/coverage"
	"github.com/rampartsec/rampart/internal/cli/deployment"
	"github.com/rampartsec/rampart/internal/cli/failure"
	"github.com/rampartsec/rampart/internal/cli/image"
	"github.com/rampartsec/rampart/internal/cli/keys"
	"github.com/rampartsec/rampart/internal/cli/product"
	"github.com/rampartsec/rampart/internal/cli/release"
)

// TestDeploymentVerbs walks the deployment verbs against a real server: refusals with one clear
// sentence, create, show by sequence number, list, pause, resume and abort, then the failure
// and coverage verbs on the empty fleet.
func TestDeploymentVerbs(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(keys.Command, image.Command, release.Command, product.Command,
		deployment.Command, failure.Command, coverage.Command), srv, srv.Admin)
	c.Env["RAMPART_KEYS_PASSPHRASE"] = "test passphrase"
	work := t.TempDir()
	c.OK("keys", "init", "--dir", filepath.Join(work, "keys"), "--threshold", "1", "--keys", "1")
	c.OK("product", "create", "gateway")
	img := filepath.Join(work, "rootfs.img")
	if err := os.WriteFile(img, []byte("rootfs 1.0.0"), 0o644); err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(c.OK("image", "add", img, "--component", "rootfs", "--version", "1.0.0"))
	c.OK("release", "create", "--product", "gateway", "--version", "1.0.0", "--image", id)

	c.Fails("--product, --group and --release are required", "deployment", "create", "--product", "gateway")
	c.Fails("not signed yet", "deployment", "create", "--product", "gateway", "--group", "Production", "--release", "1.0.0")
	c.OK("release", "sign", "--product", "gateway", "--version", "1.0.0", "--keys", filepath.Join(work, "keys"))
	c.Fails("must cover 100%", "deployment", "create", "--product", "gateway", "--group", "Production", "--release", "1.0.0", "--phases", "10,50")
	c.Fails("is not a percentage", "deployment", "create", "--product", "gateway", "--group", "Production", "--release", "1.0.0", "--phases", "ten,100")
	c.Fails("drop --phases and --soak", "deployment", "create", "--product", "gateway", "--group", "Production", "--release", "1.0.0", "--emergency", "--phases", "100")
	c.Fails("group Lab of product gateway not found", "deployment", "create", "--product", "gateway", "--group", "Lab", "--release", "1.0.0")

	out := c.OK("deployment", "create", "--product", "gateway", "--group", "Production", "--release", "1.0.0", "--phases", "5,25,100", "--soak", "2d")
	for _, want := range []string{"active", "1 of 3 (5,25,100)", "48h0m0s"} {
		if !strings.Contains(out, want) {
			t.Errorf("deployment create output lacks %q:\n%s", want, out)
		}
	}
	var d client.Deployment
	if err := json.Unmarshal([]byte(c.OK("deployment", "show", "1", "-o", "json")), &d); err != nil || d.Seq != 1 || d.Release != "1.0.0" || len(d.Phases) != 3 {
		t.Fatalf("deployment show 1 -o json = %+v, %v", d, err)
	}
	if out := c.OK("deployment", "list"); !strings.Contains(out, d.ID) || !strings.Contains(out, "active") {
		t.Errorf("deployment list:\n%s", out)
	}
	c.Fails("not paused", "deployment", "resume", d.ID)
	if out := c.OK("deployment", "pause", d.ID, "--reason", "waiting for the field team"); !strings.Contains(out, "waiting for the field team") || !strings.Contains(out, "paused") {
		t.Errorf("deployment pause:\n%s", out)
	}
	c.OK("deployment", "resume", "1")
	if out := c.OK("deployment", "abort", d.ID); !strings.Contains(out, "aborted by operator") {
		t.Errorf("deployment abort:\n%s", out)
	}
	c.Fails("already finished", "deployment", "abort", d.ID)
	c.Fails("deployment 7 not found", "deployment", "show", "7")
	if out := c.OK("deployment", "create", "--product", "gateway", "--group", "Production", "--release", "1.0.0", "--emergency"); !strings.Contains(out, "active (emergency)") || !strings.Contains(out, "1 of 1 (100)") {
		t.Errorf("emergency deployment:\n%s", out)
	}

	if out := c.OK("failure", "list", "--product", "gateway"); !strings.HasPrefix(out, "ID") || strings.Count(out, "\n") != 1 {
		t.Errorf("failure list on a quiet fleet:\n%s", out)
	}
	c.Fails("not found", "failure", "show", "flg_nothing")
	c.Fails("--product is required", "coverage")
	if out := c.OK("coverage", "--product", "gateway", "--group", "Production"); !strings.Contains(out, "gateway / Production") {
		t.Errorf("coverage:\n%s", out)
	}
	c.Fails("product toaster not found", "coverage", "--product", "toaster")
}
