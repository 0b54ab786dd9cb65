package attest

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/public"
)

// TestOpenSentences pins the agent's last line when its attester cannot be opened: what is
// wrong and what to do, with no function names.
func TestOpenSentences(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		is   error
		want string
	}{
		{"unknown backend", Config{StateDir: dir, BootID: "b", Spec: "bogus"}, ErrUnknownBackend,
			`--attester "bogus": unknown attester backend; use software, tpm, swtpm:HOST:PORT or simulator`},
		{"simulator not built", Config{StateDir: dir, BootID: "b", Spec: "simulator"}, ErrNotBuilt,
			"--attester simulator: attester backend not built into this binary: build rampart-agent with CGO_ENABLED=1 -tags simulator"},
		{"state folder", Config{StateDir: filepath.Join(file, "state"), BootID: "b", Spec: "software"}, nil,
			"cannot create the state folder: mkdir " + file + ": not a directory"},
	} {
		_, err := Open(context.Background(), tc.cfg)
		if tc.is != nil && !errors.Is(err, tc.is) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.is)
		}
		if msg, ok := public.Message(err); !ok || msg != tc.want {
			t.Errorf("%s: %v; sentence %q (%v), want %q", tc.name, err, msg, ok, tc.want)
		}
	}
}
