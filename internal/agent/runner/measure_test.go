package runner

import (
	"context"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/agent/attest"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

// TestMeasureBootMeasuresAChangedFileAgain: measureBoot runs at every check-in; a file it
// measured is not extended again while it is unchanged, and is measured again (a new event with
// the new digest) once it changes within the same boot, whatever the file's times say.
func TestMeasureBootMeasuresAChangedFileAgain(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	app := filepath.Join(dir, "app.bin")
	if err := os.WriteFile(app, []byte("application 1.0"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := New(ctx, Config{StateDir: filepath.Join(dir, "state"), Attester: string(deviceapi.KindSoftware), KernelBootID: "boot-1",
		Measures: []Measure{{Type: deviceapi.EventApplication, Name: "app", Version: "1.0", Path: app}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.Close)
	digests := func() []string {
		t.Helper()
		var out []string
		for _, ev := range r.mlog.Events {
			if ev.Name == "app" {
				out = append(out, ev.Digest)
			}
		}
		return out
	}
	for range 2 {
		if err := r.measureBoot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := digests(); len(got) != 1 {
		t.Fatalf("an unchanged file measured twice in one boot: %v", got)
	}
	st, _ := os.Stat(app)
	time.Sleep(50 * time.Millisecond)                                           // a clock tick of the file's times
	if err := os.WriteFile(app, []byte("application 6.6"), 0o600); err != nil { // same size
		t.Fatal(err)
	}
	if err := os.Chtimes(app, st.ModTime(), st.ModTime()); err != nil {
		t.Fatal(err)
	}
	if err := r.measureBoot(ctx); err != nil {
		t.Fatal(err)
	}
	want, err := attest.FileDigest(app)
	if err != nil {
		t.Fatal(err)
	}
	if got := digests(); len(got) != 2 || got[1] != hex.EncodeToString(want) {
		t.Fatalf("after the change: events %v, want a second one with %x", got, want)
	}
}
