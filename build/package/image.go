package main

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// The image's user and files. The user is a number only: the image has no /etc/passwd, since
// nothing in it looks names up.
const (
	imageUID  = 65532
	imageData = "/var/lib/rampart"
	// CACertificates is Debian's bundle of CA certificates (package ca-certificates) on the
	// machine that builds the image; Go's crypto/x509 reads it from the same path in the image.
	CACertificates = "/etc/ssl/certs/ca-certificates.crt"
)

// image writes the server's image for every server architecture: an OCI layout
// (OUT/rampart-image, one multi-architecture index named by the version) and one
// docker-archive tarball per architecture (OUT/rampart-image_VERSION_ARCH.tar).
func (b *builder) image(ctx context.Context) error {
	certs, err := os.ReadFile(CACertificates)
	if err != nil {
		return fmt.Errorf("the image's CA certificates: %w (install Debian's ca-certificates)", err)
	}
	tag, err := name.NewTag("localhost/rampart:" + dockerTag(b.version))
	if err != nil {
		return err
	}
	idx := mutate.IndexMediaType(empty.Index, types.OCIImageIndex)
	for _, arch := range serverArchs {
		bin, err := b.binary(ctx, target{"rampart", arch})
		if err != nil {
			return err
		}
		img, err := b.archImage(arch, bin, certs)
		if err != nil {
			return fmt.Errorf("image for %s: %w", arch, err)
		}
		idx = mutate.AppendManifests(idx, mutate.IndexAddendum{Add: img, Descriptor: v1.Descriptor{
			Platform: &v1.Platform{OS: "linux", Architecture: arch}}})
		tarPath := filepath.Join(b.out, fmt.Sprintf("rampart-image_%s_%s.tar", b.version, arch))
		if err := tarball.WriteToFile(tarPath, tag, img); err != nil {
			return fmt.Errorf("image tarball for %s: %w", arch, err)
		}
		fmt.Fprintf(os.Stderr, "package: wrote %s (%s)\n", tarPath, tag)
	}
	dir := filepath.Join(b.out, "rampart-image")
	if err := os.RemoveAll(dir); err != nil {
		return err
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	if err := p.AppendIndex(idx, layout.WithAnnotations(map[string]string{
		"org.opencontainers.image.ref.name": dockerTag(b.version)})); err != nil {
		return fmt.Errorf("OCI layout: %w", err)
	}
	fmt.Fprintf(os.Stderr, "package: wrote the OCI layout %s (reference %s)\n", dir, dockerTag(b.version))
	return nil
}

// archImage is one architecture's image: one layer with the binary, the CA certificates and an
// empty data folder owned by the image's user.
func (b *builder) archImage(arch, bin string, certs []byte) (v1.Image, error) {
	binary, err := os.ReadFile(bin)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	dir := func(path string, uid int, mode int64) error {
		return tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: path + "/", Mode: mode, Uid: uid, Gid: uid, ModTime: b.mtime, Format: tar.FormatPAX})
	}
	reg := func(path string, mode int64, data []byte) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: path, Mode: mode, Size: int64(len(data)), ModTime: b.mtime, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := tw.Write(data)
		return err
	}
	for _, d := range []string{"etc", "etc/ssl", "etc/ssl/certs", "usr", "usr/bin", "var", "var/lib"} {
		if err := dir(d, 0, 0o755); err != nil {
			return nil, err
		}
	}
	if err := dir(imageData[1:], imageUID, 0o700); err != nil {
		return nil, err
	}
	if err := reg(CACertificates[1:], 0o644, certs); err != nil {
		return nil, err
	}
	if err := reg("usr/bin/rampart", 0o755, binary); err != nil {
		return nil, err
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	layerBytes := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerBytes)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, err
	}
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	img, err = mutate.ConfigFile(img, &v1.ConfigFile{
		Architecture: arch, OS: "linux", Created: v1.Time{Time: b.mtime},
		Config: v1.Config{
			User:         fmt.Sprintf("%d:%d", imageUID, imageUID),
			Entrypoint:   []string{"/usr/bin/rampart"},
			Cmd:          []string{"server", "--data", imageData, "--listen", "0.0.0.0:8443", "--log-format", "json"},
			WorkingDir:   imageData,
			Env:          []string{"SSL_CERT_FILE=" + CACertificates},
			ExposedPorts: map[string]struct{}{"8443/tcp": {}},
			Labels: map[string]string{
				"org.opencontainers.image.title":   "rampart",
				"org.opencontainers.image.version": b.version,
				"org.opencontainers.image.description": "Rampart server: attestation, device certificates, signed staged updates and " +
					"vulnerability response for device fleets",
			},
		},
	})
	if err != nil {
		return nil, err
	}
	return mutate.Append(img, mutate.Addendum{Layer: layer, History: v1.History{
		Created: v1.Time{Time: b.mtime}, CreatedBy: "go run ./build/package", Comment: "rampart, CA certificates, data folder"}})
}

var notTag = regexp.MustCompile(`[^A-Za-z0-9_.-]`)

// dockerTag is the version as an image tag, which allows fewer characters than Debian's.
func dockerTag(v string) string { return notTag.ReplaceAllString(v, "-") }
