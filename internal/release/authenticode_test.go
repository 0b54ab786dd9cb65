package release

import (
	"context"

	"bytes"
	"crypto/sha256"
	bin "encoding/binary"
	"encoding/hex"
	"github.com/rampartsec/rampart/internal/store"
	"github.com/rampartsec/rampart/internal/store/storetest"
	"github.com/rampartsec/rampart/internal/testenv"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// minimalEFI builds a small PE32+ EFI application: DOS header, PE headers, one .text
// section holding code.
func minimalEFI(code []byte) []byte {
	b := make([]byte, 0x400)
	le16 := func(off int, v uint16) { bin.LittleEndian.PutUint16(b[off:], v) }
	le32 := func(off int, v uint32) { bin.LittleEndian.PutUint32(b[off:], v) }
	copy(b, "MZ")
	le32(0x3c, 0x40)
	copy(b[0x40:], "PE\x00\x00")
	le16(0x44, 0x8664) // machine
	le16(0x46, 1)      // sections
	le16(0x54, 240)    // size of optional header
	le16(0x56, 0x22)   // executable, large address aware
	opt := 0x58
	le16(opt, 0x20b)                                   // PE32+
	le32(opt+4, 0x200)                                 // size of code
	le32(opt+16, 0x1000)                               // entry point
	le32(opt+20, 0x1000)                               // base of code
	bin.LittleEndian.PutUint64(b[opt+24:], 0x10000000) // image base, 64 KiB aligned
	le32(opt+32, 0x1000)                               // section alignment
	le32(opt+36, 0x200)                                // file alignment
	le32(opt+56, 0x2000)                               // size of image
	le32(opt+60, 0x200)                                // size of headers
	le32(opt+64, 0xdeadbeef)                           // checksum: left out of the hash
	le16(opt+68, 10)                                   // EFI application
	le32(opt+108, 16)                                  // data directories
	sec := opt + 240
	copy(b[sec:], ".text")
	le32(sec+8, uint32(len(code)))
	le32(sec+12, 0x1000)
	le32(sec+16, 0x200)
	le32(sec+20, 0x200)
	le32(sec+36, 0x60000020)
	copy(b[0x200:], code)
	return b
}

// specAuthenticode hashes a PE without a certificate table as the Authenticode specification
// says: everything but the checksum and the certificate table's directory entry.
func specAuthenticode(b []byte) string {
	opt := int(bin.LittleEndian.Uint32(b[0x3c:])) + 24
	checksum, certDir := opt+64, opt+112+4*8
	h := sha256.New()
	h.Write(b[:checksum])
	h.Write(b[checksum+4 : certDir])
	h.Write(b[certDir+8:])
	return hex.EncodeToString(h.Sum(nil))
}

func authenticodeOf(b []byte) string {
	var c peCapture
	// Write in pieces, as the upload streams.
	for len(b) > 0 {
		n := min(len(b), 100)
		c.Write(b[:n])
		b = b[n:]
	}
	return c.authenticode()
}

func TestAuthenticode(t *testing.T) {
	efi := minimalEFI([]byte{0x48, 0x31, 0xc0, 0xc3}) // xor rax, rax; ret
	got := authenticodeOf(efi)
	if got == "" || got != specAuthenticode(efi) {
		t.Fatalf("authenticode %q, the specification's %q", got, specAuthenticode(efi))
	}
	fileSum := sha256.Sum256(efi)
	if got == hex.EncodeToString(fileSum[:]) {
		t.Error("the Authenticode digest is the file's SHA-256: the checksum was not left out")
	}
	// The checksum does not change the digest; the code does.
	other := bytes.Clone(efi)
	other[0x58+64] ^= 0xff
	if authenticodeOf(other) != got {
		t.Error("the checksum changed the Authenticode digest")
	}
	other[0x200] ^= 0xff
	if authenticodeOf(other) == got {
		t.Error("changed code kept the Authenticode digest")
	}
	for name, b := range map[string][]byte{
		"rootfs":     bytes.Repeat([]byte("ext4"), 1000),
		"mz only":    []byte("MZ not a PE file at all, though it starts like one............................"),
		"truncated":  efi[:0x100],
		"empty":      nil,
		"one byte M": []byte("M"),
	} {
		if d := authenticodeOf(b); d != "" {
			t.Errorf("%s: authenticode %s, want none", name, d)
		}
	}
}

// TestAuthenticodeMatchesPesign checks real EFI binaries of this machine (the Debian kernel's
// EFI stub, signed GRUB) against pesign, when both are there.
func TestAuthenticodeMatchesPesign(t *testing.T) {
	pesign, err := exec.LookPath("pesign")
	if err != nil {
		testenv.Missing(t, "pesign", "apt-get install pesign")
	}
	files, _ := filepath.Glob("/boot/vmlinuz-*")
	more, _ := filepath.Glob("/usr/lib/grub/x86_64-efi-signed/*.efi.signed")
	files = append(files, more...)
	compared := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Logf("%s: %v (left out)", f, err) // a kernel readable by root only, say
			continue
		}
		out, err := exec.Command(pesign, "-h", "-i", f).Output()
		if err != nil {
			t.Logf("pesign -h -i %s: %v (left out)", f, err)
			continue
		}
		want := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(out)), "hash:"))
		if got := authenticodeOf(b); got != want {
			t.Errorf("%s: authenticode %s, pesign %s", f, got, want)
		}
		compared++
	}
	if compared == 0 {
		testenv.Missing(t, "an EFI binary pesign can read (Debian's kernel or signed GRUB)", "apt-get install linux-image-amd64 grub-efi-amd64-signed")
	}
	t.Logf("%d EFI binaries match pesign", compared)
}

// TestAddImageRecordsAuthenticode: an EFI image added to the tenant carries its Authenticode
// digest into storage and into the reference values of the releases that hold it.
func TestAddImageRecordsAuthenticode(t *testing.T) {
	for _, kind := range storetest.Kinds {
		t.Run(kind, func(t *testing.T) { addImageRecordsAuthenticode(t, newFixture(t, kind)) })
	}
}

func addImageRecordsAuthenticode(t *testing.T, f *fixture) {
	ctx := context.Background()
	efi := minimalEFI([]byte{0xc3})
	im, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, bytes.NewReader(efi), "boot", "1.0.0", 0)
	if err != nil {
		t.Fatal(err)
	}
	if im.Authenticode != specAuthenticode(efi) {
		t.Fatalf("image authenticode %q, want %q", im.Authenticode, specAuthenticode(efi))
	}
	plain, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, bytes.NewReader([]byte("rootfs")), "rootfs", "1.0.0", 0)
	if err != nil || plain.Authenticode != "" {
		t.Fatalf("a rootfs image: %+v, %v", plain, err)
	}
	stored, err := f.st.Image(ctx, f.tenant.ID, im.SHA256)
	if err != nil || stored.Authenticode != im.Authenticode {
		t.Fatalf("stored image %+v, %v", stored, err)
	}
}
