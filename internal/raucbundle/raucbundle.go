// Package raucbundle reads what Rampart needs of a RAUC bundle without installing it: its
// format and its manifest hash, the lowercase hex SHA-256 of the manifest's bytes (what RAUC
// itself computes and compares with InstallBundle's require-manifest-hash). A bundle is a
// squashfs image followed by a CMS signature (DER) and the signature's size as a big-endian
// 64-bit number. In the verity and crypt formats the signature carries the manifest inside it;
// in the plain format the manifest is the file manifest.raucm of the squashfs, read with
// squashfs-tools' unsquashfs (which RAUC needs anyway).
//
// The CLI (`rampart image add --type rauc-bundle`) and the agent's RAUC installer import it;
// it imports only the standard library.
package raucbundle

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"time"
)

// Bundle formats.
const (
	FormatPlain  = "plain"
	FormatVerity = "verity"
)

// maxSignature bounds the CMS signature at a bundle's end (RAUC's own bound is 64 KiB).
const maxSignature = 1 << 20

// maxManifest bounds a plain bundle's manifest.
const maxManifest = 1 << 20

// ErrNotBundle means the file is not a RAUC bundle Rampart can read.
var ErrNotBundle = errors.New("not a RAUC bundle")

var (
	oidSignedData    = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 2}
	oidEnvelopedData = asn1.ObjectIdentifier{1, 2, 840, 113549, 1, 7, 3}
)

// Info is what Inspect read of a bundle.
type Info struct {
	// Format is FormatPlain or FormatVerity.
	Format string
	// ManifestHash is the lowercase hex SHA-256 of the manifest.
	ManifestHash string
}

// Inspect reads the bundle at path. A plain bundle needs unsquashfs on PATH; ctx bounds it.
func Inspect(ctx context.Context, path string) (Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return Info{}, fmt.Errorf("raucbundle.Inspect: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Info{}, fmt.Errorf("raucbundle.Inspect: %w", err)
	}
	manifest, err := signedManifest(f, st.Size())
	if err != nil {
		return Info{}, fmt.Errorf("raucbundle.Inspect: %w", err)
	}
	if manifest != nil {
		sum := sha256.Sum256(manifest)
		return Info{Format: FormatVerity, ManifestHash: hex.EncodeToString(sum[:])}, nil
	}
	manifest, err = plainManifest(ctx, path)
	if err != nil {
		return Info{}, fmt.Errorf("raucbundle.Inspect: %w", err)
	}
	sum := sha256.Sum256(manifest)
	return Info{Format: FormatPlain, ManifestHash: hex.EncodeToString(sum[:])}, nil
}

// signedManifest returns the manifest carried inside the bundle's signature (verity), or nil
// for a detached signature (plain).
func signedManifest(r io.ReaderAt, size int64) ([]byte, error) {
	if size < 8 {
		return nil, fmt.Errorf("%w: %d bytes", ErrNotBundle, size)
	}
	var tail [8]byte
	if _, err := r.ReadAt(tail[:], size-8); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint64(tail[:])
	if n == 0 || n > maxSignature || int64(n) > size-8 {
		return nil, fmt.Errorf("%w: no signature at its end", ErrNotBundle)
	}
	der := make([]byte, n)
	if _, err := r.ReadAt(der, size-8-int64(n)); err != nil {
		return nil, err
	}
	var ci struct {
		Type    asn1.ObjectIdentifier
		Content asn1.RawValue `asn1:"explicit,tag:0"`
	}
	if rest, err := asn1.Unmarshal(der, &ci); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("%w: its signature is not a CMS structure", ErrNotBundle)
	}
	if ci.Type.Equal(oidEnvelopedData) {
		return nil, fmt.Errorf("%w: an encrypted (crypt) bundle, whose manifest only the device can read", ErrNotBundle)
	}
	if !ci.Type.Equal(oidSignedData) {
		return nil, fmt.Errorf("%w: its signature is not CMS signed data", ErrNotBundle)
	}
	var sd struct {
		Version          int
		DigestAlgorithms asn1.RawValue
		Encap            struct {
			Type    asn1.ObjectIdentifier
			Content asn1.RawValue `asn1:"optional,explicit,tag:0"`
		}
		Rest asn1.RawValue `asn1:"optional"`
	}
	if _, err := asn1.UnmarshalWithParams(ci.Content.Bytes, &sd, ""); err != nil {
		return nil, fmt.Errorf("%w: its CMS signed data does not decode: %w", ErrNotBundle, err)
	}
	if len(sd.Encap.Content.FullBytes) == 0 {
		return nil, nil // detached: a plain bundle
	}
	return octets(sd.Encap.Content.Bytes)
}

// octets returns an OCTET STRING's content, primitive or constructed of primitive pieces.
func octets(b []byte) ([]byte, error) {
	var v asn1.RawValue
	if _, err := asn1.Unmarshal(b, &v); err != nil || v.Tag != asn1.TagOctetString {
		return nil, fmt.Errorf("%w: the signed content is not an octet string", ErrNotBundle)
	}
	if !v.IsCompound {
		return v.Bytes, nil
	}
	var out bytes.Buffer
	for rest := v.Bytes; len(rest) > 0; {
		var piece asn1.RawValue
		var err error
		if rest, err = asn1.Unmarshal(rest, &piece); err != nil || piece.Tag != asn1.TagOctetString || piece.IsCompound {
			return nil, fmt.Errorf("%w: the signed content is not an octet string", ErrNotBundle)
		}
		out.Write(piece.Bytes)
	}
	return out.Bytes(), nil
}

// plainManifest reads manifest.raucm out of a plain bundle's squashfs.
func plainManifest(ctx context.Context, path string) ([]byte, error) {
	bin, err := exec.LookPath("unsquashfs")
	if err != nil {
		return nil, fmt.Errorf("reading a plain bundle's manifest needs unsquashfs (Debian package squashfs-tools): %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-cat", path, "manifest.raucm")
	cmd.Stdout, cmd.Stderr = &limitWriter{w: &out, n: maxManifest}, &limitWriter{w: &errb, n: 4096}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("%w: unsquashfs cannot read its manifest.raucm: %w: %s", ErrNotBundle, err, bytes.TrimSpace(errb.Bytes()))
	}
	if out.Len() == 0 {
		return nil, fmt.Errorf("%w: its manifest.raucm is empty", ErrNotBundle)
	}
	return out.Bytes(), nil
}

// limitWriter keeps at most n bytes and fails past them.
type limitWriter struct {
	w io.Writer
	n int
}

func (l *limitWriter) Write(p []byte) (int, error) {
	if len(p) > l.n {
		return 0, fmt.Errorf("output larger than its limit")
	}
	l.n -= len(p)
	return l.w.Write(p)
}
