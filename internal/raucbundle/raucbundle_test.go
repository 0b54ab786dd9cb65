package raucbundle

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rampartsec/rampart/internal/testenv"
)

func sumFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func run(t *testing.T, dir string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// TestInspect builds a plain and a verity bundle with Debian's rauc and checks that the
// manifest hash read here is the SHA-256 of the manifest RAUC verifies: the manifest file of
// the plain bundle, and the content of the verity bundle's signature (which RAUC completes with
// the verity parameters), extracted with rauc and openssl.
func TestInspect(t *testing.T) {
	for _, tool := range []string{"rauc", "mksquashfs", "unsquashfs", "openssl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testenv.Missing(t, tool, "install Debian's rauc, squashfs-tools and openssl packages")
		}
	}
	dir := t.TempDir()
	run(t, dir, "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "key.pem", "-out", "cert.pem", "-subj", "/CN=raucbundle test", "-days", "30")
	manifest := "[update]\ncompatible=test\nversion=1.0.0\n\n[image.rootfs]\nfilename=rootfs.img\n"
	for _, format := range []string{FormatPlain, FormatVerity} {
		t.Run(format, func(t *testing.T) {
			content := filepath.Join(dir, format)
			if err := os.MkdirAll(content, 0o700); err != nil {
				t.Fatal(err)
			}
			m := manifest
			if format == FormatVerity {
				m += "\n[bundle]\nformat=verity\n"
			}
			if err := os.WriteFile(filepath.Join(content, "manifest.raucm"), []byte(m), 0o600); err != nil {
				t.Fatal(err)
			}
			// The verity format needs a squashfs of more than one 4 KiB block: random bytes.
			img := make([]byte, 64<<10)
			if _, err := rand.Read(img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(content, "rootfs.img"), img, 0o600); err != nil {
				t.Fatal(err)
			}
			bundle := filepath.Join(dir, format+".raucb")
			run(t, dir, "rauc", "bundle", "--cert=cert.pem", "--key=key.pem", content, bundle)
			info, err := Inspect(context.Background(), bundle)
			if err != nil {
				t.Fatal(err)
			}
			want := sumFile(t, filepath.Join(content, "manifest.raucm"))
			if format == FormatVerity {
				run(t, dir, "rauc", "extract-signature", "--keyring=cert.pem", bundle, "sig.cms")
				run(t, dir, "openssl", "cms", "-verify", "-noverify", "-inform", "DER", "-in", "sig.cms", "-out", "signed.raucm")
				want = sumFile(t, filepath.Join(dir, "signed.raucm"))
			}
			if info.Format != format || info.ManifestHash != want {
				t.Fatalf("Inspect = %+v, want format %s and manifest hash %s", info, format, want)
			}
		})
	}
}

func TestInspectRefuses(t *testing.T) {
	dir := t.TempDir()
	for name, b := range map[string][]byte{
		"empty":       nil,
		"text":        []byte("not a bundle at all\n"),
		"huge size":   append(make([]byte, 64), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff),
		"not cms":     append(make([]byte, 64), 0, 0, 0, 0, 0, 0, 0, 16),
		"short claim": {0, 0, 0, 0, 0, 0, 0, 200},
	} {
		p := filepath.Join(dir, "b")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := Inspect(context.Background(), p); !errors.Is(err, ErrNotBundle) {
			t.Errorf("%s: Inspect = %v, want ErrNotBundle", name, err)
		}
	}
}
