// Command package builds Rampart's release artifacts from this source tree, with no Docker
// daemon and no packaging tool installed: the Debian packages rampart (amd64, arm64) and
// rampart-agent (amd64, arm64, armhf), through nfpm used as a library, and the server's
// container image for amd64 and arm64, through go-containerregistry, as an OCI layout holding
// a multi-architecture index and as one docker-archive tarball per architecture (for podman
// load). Every binary is cross-compiled with CGO_ENABLED=0. Nothing imports it.
//
//	go run ./build/package [-out dist] [-version V] [-only deb|image]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
)

// A target is one binary for one architecture.
type target struct {
	cmd  string // rampart or rampart-agent
	arch string // Debian's name: amd64, arm64, armhf
}

// goEnv is the GOARCH (and GOARM) that builds for a Debian architecture.
func (t target) goEnv() []string {
	switch t.arch {
	case "armhf":
		return []string{"GOARCH=arm", "GOARM=7"}
	default:
		return []string{"GOARCH=" + t.arch}
	}
}

// Debian architectures each package is built for.
var (
	serverArchs = []string{"amd64", "arm64"}
	agentArchs  = []string{"amd64", "arm64", "armhf"}
)

type builder struct {
	root    string // module root
	out     string
	version string
	mtime   time.Time // of every file in the packages and the image: the commit's time
	bins    map[target]string
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	err := run(ctx, os.Args[1:])
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "package:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("package", flag.ContinueOnError)
	out := fs.String("out", "dist", "folder the packages and the image are written to")
	version := fs.String("version", "", "version of the packages and the image (default: from git describe)")
	only := fs.String("only", "", "build only deb (the packages) or image (the container image)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *only != "" && *only != "deb" && *only != "image" {
		return fmt.Errorf("-only %q is not deb or image", *only)
	}
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	b := &builder{root: root, bins: map[target]string{}}
	if b.out, err = filepath.Abs(*out); err != nil {
		return err
	}
	if err := os.MkdirAll(b.out, 0o755); err != nil {
		return err
	}
	b.version, b.mtime = gitVersion(ctx, root)
	if *version != "" {
		b.version = *version
	}
	if !validVersion(b.version) {
		return fmt.Errorf("version %q must start with a digit and hold only letters, digits and .+~-", b.version)
	}
	if *only != "image" {
		if err := b.debs(ctx); err != nil {
			return err
		}
	}
	if *only != "deb" {
		if err := b.image(ctx); err != nil {
			return err
		}
	}
	return nil
}

// moduleRoot is the folder of Rampart's go.mod: the build reads its files from there.
func moduleRoot(ctx context.Context) (string, error) {
	gomod, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	if _, err := os.Stat(filepath.Join(root, "build", "package", "files")); err != nil {
		return "", errors.New("run it inside Rampart's source tree: go run ./build/package")
	}
	return root, nil
}

// gitVersion is the version from the nearest tag (v1.2.3 becomes 1.2.3), or 0.0.0~git.SHA on
// a tree with no tag, with +dirty for uncommitted changes; and the commit's time, which every
// file in the artifacts carries so that two builds of one commit are the same bytes.
func gitVersion(ctx context.Context, root string) (string, time.Time) {
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "log", "-1", "--format=%ct").Output(); err == nil {
		var sec int64
		if _, err := fmt.Sscan(strings.TrimSpace(string(out)), &sec); err == nil {
			mtime = time.Unix(sec, 0).UTC()
		}
	}
	out, err := exec.CommandContext(ctx, "git", "-C", root, "describe", "--tags", "--always", "--dirty=+dirty").Output()
	if err != nil {
		return "0.0.0~dev", mtime
	}
	d := strings.TrimSpace(string(out))
	if v, ok := strings.CutPrefix(d, "v"); ok && v != "" && v[0] >= '0' && v[0] <= '9' {
		return strings.ReplaceAll(v, "-", "+"), mtime
	}
	return "0.0.0~git." + d, mtime
}

func validVersion(v string) bool {
	if v == "" || v[0] < '0' || v[0] > '9' {
		return false
	}
	for _, r := range v {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || strings.ContainsRune(".+~-", r)) {
			return false
		}
	}
	return true
}

// binary cross-compiles one command for one architecture (once per run) and returns its path.
func (b *builder) binary(ctx context.Context, t target) (string, error) {
	if p, ok := b.bins[t]; ok {
		return p, nil
	}
	dir := filepath.Join(b.out, "bin", "linux-"+t.arch)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, t.cmd)
	ldflags := "-s -w -X github.com/rampartsec/rampart/internal/cli.Version=" + b.version
	if t.cmd == "rampart-agent" {
		ldflags = "-s -w -X main.version=" + b.version
	}
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", path, "./cmd/"+t.cmd)
	cmd.Dir = b.root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	cmd.Env = append(cmd.Env, t.goEnv()...)
	cmd.Stderr = os.Stderr
	fmt.Fprintf(os.Stderr, "package: building %s for linux/%s\n", t.cmd, t.arch)
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build %s for %s: %w", t.cmd, t.arch, err)
	}
	if err := os.Chtimes(path, b.mtime, b.mtime); err != nil {
		return "", err
	}
	b.bins[t] = path
	return path, nil
}
