package image_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli/clitest"
	"github.com/rampartsec/rampart/internal/cli/image"
)

func TestImageAdd(t *testing.T) {
	srv := clitest.Start(t, "")
	c := clitest.New(t, clitest.Nouns(image.Command), srv, srv.Admin)
	dir := t.TempDir()
	file := filepath.Join(dir, "app.img")
	content := []byte(strings.Repeat("firmware ", 10000))
	os.WriteFile(file, content, 0o644)
	sum := sha256.Sum256(content)

	if got := strings.TrimSpace(c.OK("image", "add", file, "--component", "app", "--version", "2.1.0")); got != hex.EncodeToString(sum[:]) {
		t.Errorf("image add printed %q, want the SHA-256 of the file", got)
	}
	var im client.Image
	if err := json.Unmarshal([]byte(c.OK("image", "add", file, "--component", "app", "--version", "2.1.0", "-o", "json")), &im); err != nil ||
		im.Length != int64(len(content)) || im.Component != "app" {
		t.Errorf("image add -o json = %+v, %v", im, err)
	}
	c.Fails("already exists or differs", "image", "add", file, "--component", "app", "--version", "9.0.0")
	c.Fails("not a regular file", "image", "add", dir, "--component", "app", "--version", "1.0.0")
	c.Fails("no such file", "image", "add", filepath.Join(dir, "missing"), "--component", "app", "--version", "1.0.0")
	c.Fails("refused: component", "image", "add", file, "--component", "../x", "--version", "1.0.0")
	c.Fails("accepts 1 arg", "image", "add")
}
