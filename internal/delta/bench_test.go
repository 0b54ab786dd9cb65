package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/internal/testenv"
)

// repoRoot finds the module root from this package's directory.
func repoRoot(tb testing.TB) string {
	tb.Helper()
	dir, err := os.Getwd()
	if err != nil {
		tb.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			tb.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// goBuild compiles pkg with the given flags into dir and returns the
// binary; a flags list starting with "test" builds the package's test
// binary (go test -c), a real program that links the package's code.
func goBuild(tb testing.TB, root, dir, name, pkg string, flags ...string) []byte {
	tb.Helper()
	out := filepath.Join(dir, name)
	args := append([]string{"build", "-o", out}, flags...)
	if len(flags) > 0 && flags[0] == "test" {
		args = append([]string{"test", "-c", "-o", out}, flags[1:]...)
	}
	args = append(args, pkg)
	cmd := exec.Command("go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// toolPatch runs an external differ and returns its patch size.
func toolPatch(tb testing.TB, dir, name string, args ...string) int64 {
	tb.Helper()
	cmd := exec.Command(name, args...)
	if b, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, b)
	}
	st, err := os.Stat(args[len(args)-1])
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}

// peakHeap samples the live heap while fn runs and returns the largest
// value above the level before it started.
func peakHeap(fn func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(sample)
	base := sample[0].Value.Uint64()
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			if v := s[0].Value.Uint64(); v > peak.Load() {
				peak.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	if p := peak.Load(); p > base {
		return p - base
	}
	return 0
}

// BenchmarkReleaseDelta builds two releases of real binaries of this
// repository (rampart-agent and rampart, with different build flags), then
// measures in the same run: our patch against the full image and against
// bsdiff, xdelta3 and zstd --patch-from on the same pair, and the time and
// peak heap of applying it. Run with:
//
//	go test ./internal/delta -run '^$' -bench ReleaseDelta -benchtime 3x
func BenchmarkReleaseDelta(b *testing.B) {
	if _, err := exec.LookPath("go"); err != nil {
		testenv.Missing(b, "the go command", "install Go to build the release binaries")
	}
	var missing []string
	for _, tool := range []string{"bsdiff", "xdelta3", "zstd"} {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		testenv.Missing(b, "delta baselines "+strings.Join(missing, ", "), "apt-get install bsdiff xdelta3 zstd")
	}
	root := repoRoot(b)
	pairs := []struct {
		name     string
		pkg      string
		old, new []string
	}{
		{"agent/version-bump", "./cmd/rampart-agent",
			[]string{"-ldflags=-X main.version=1.0.0"},
			[]string{"-ldflags=-X main.version=1.1.0"}},
		{"agent/trimpath-rebuild", "./cmd/rampart-agent",
			[]string{"-ldflags=-X main.version=1.0.0"},
			[]string{"-trimpath", "-ldflags=-X main.version=1.1.0"}},
		// The agent's updater with go-tuf, sigstore and zstd linked in: what
		// rampart-agent weighs once it carries its update code.
		{"agent-updater/trimpath-rebuild", "./internal/agent/update",
			[]string{"test", "-ldflags=-X main.version=1.0.0"},
			[]string{"test", "-trimpath", "-ldflags=-X main.version=1.1.0"}},
		{"server/trimpath-rebuild", "./cmd/rampart",
			[]string{"-ldflags=-X main.version=1.0.0"},
			[]string{"-trimpath", "-ldflags=-X main.version=1.1.0"}},
	}
	for _, p := range pairs {
		if _, err := os.Stat(filepath.Join(root, p.pkg)); err != nil {
			b.Logf("%s: %s not found, skipped", p.name, p.pkg)
			continue
		}
		dir := b.TempDir()
		oldB := goBuild(b, root, dir, "old", p.pkg, p.old...)
		newB := goBuild(b, root, dir, "new", p.pkg, p.new...)
		oldPath, newPath := filepath.Join(dir, "old"), filepath.Join(dir, "new")

		var patch bytes.Buffer
		buildStart := time.Now()
		if err := Build(context.Background(), &patch, oldB, bytes.NewReader(newB), int64(len(newB)), BuildOptions{}); err != nil {
			b.Fatal(err)
		}
		buildTime := time.Since(buildStart)
		window := WindowFor(int64(len(oldB)), int64(len(newB)), DefaultMaxWindow)
		wlog := 0
		for 1<<wlog < window {
			wlog++
		}
		bsdiff := toolPatch(b, dir, "bsdiff", oldPath, newPath, filepath.Join(dir, "p.bsdiff"))
		xdelta := toolPatch(b, dir, "xdelta3", "-e", "-9", "-f", "-s", oldPath, newPath, filepath.Join(dir, "p.xd3"))
		zstdp := toolPatch(b, dir, "zstd", "-q", "-f", "-19", fmt.Sprintf("--long=%d", wlog), "--patch-from="+oldPath, newPath, "-o", filepath.Join(dir, "p.zst"))

		sum := sha256.Sum256(newB)
		want := Target{Length: int64(len(newB)), SHA256: sum[:]}
		base, release, err := MapFile(oldPath)
		if err != nil {
			b.Fatal(err)
		}
		patchBytes := patch.Bytes()
		apply := func() {
			if err := Apply(context.Background(), discard{}, base, bytes.NewReader(patchBytes), want, ApplyOptions{}); err != nil {
				b.Fatal(err)
			}
		}
		peak := peakHeap(apply)

		full, ours := float64(len(newB)), float64(len(patchBytes))
		b.Logf("%s: full %d, ours %d (%.1fx smaller, built in %s), bsdiff %d, xdelta3 %d, zstd --patch-from %d; ours/bsdiff %.2f; apply peak heap %d bytes (window %d)",
			p.name, len(newB), len(patchBytes), full/ours, buildTime.Round(time.Millisecond), bsdiff, xdelta, zstdp, ours/float64(bsdiff), peak, window)
		b.Run(p.name, func(b *testing.B) {
			b.SetBytes(int64(len(newB)))
			b.ReportAllocs()
			for b.Loop() {
				apply()
			}
			b.ReportMetric(full, "full-bytes")
			b.ReportMetric(ours, "patch-bytes")
			b.ReportMetric(full/ours, "full/patch")
			b.ReportMetric(float64(bsdiff), "bsdiff-bytes")
			b.ReportMetric(ours/float64(bsdiff), "patch/bsdiff")
			b.ReportMetric(float64(xdelta), "xdelta3-bytes")
			b.ReportMetric(float64(zstdp), "zstd-patch-from-bytes")
			b.ReportMetric(float64(peak), "peak-heap-bytes")
		})
		if err := release(); err != nil {
			b.Fatal(err)
		}
	}
}

// discard hashes nothing and keeps nothing, like io.Discard but a distinct
// type so the copy path matches a real file writer.
type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkApply measures applying a patch to a 4 MiB synthetic image, and to a 256 KiB one
// (the fleet simulator's), with a new decoder each time as an agent does and with the decoders
// of a Decoders as the simulator does.
func BenchmarkApply(b *testing.B) {
	for _, size := range []int{4 << 20, 256 << 10} {
		base := image(1, size)
		next := edit(base, 2)
		patch := build(b, base, next)
		want := target(next)
		for _, kept := range []bool{false, true} {
			opts := ApplyOptions{}
			if kept {
				opts.Decoders = &Decoders{}
			}
			b.Run(fmt.Sprintf("size=%dKiB/decoders=%v", size>>10, kept), func(b *testing.B) {
				b.SetBytes(int64(len(next)))
				b.ReportAllocs()
				for b.Loop() {
					if err := Apply(context.Background(), discard{}, base, bytes.NewReader(patch), want, opts); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(patch)), "patch-bytes")
			})
		}
	}
}
