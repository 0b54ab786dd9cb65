package release

import (
	"bytes"
	"encoding/hex"

	pe "github.com/saferwall/pe"
)

// maxPEImage bounds the images whose Authenticode digest is computed: EFI binaries (shim,
// GRUB, a kernel with its EFI stub, a unified kernel image) are a few MiB to a few tens.
const maxPEImage = 128 << 20

// peCapture keeps the bytes of an image while they may be a PE binary: it stops at the first
// bytes that are not "MZ", or past maxPEImage.
type peCapture struct {
	buf  bytes.Buffer
	dead bool
}

func (c *peCapture) Write(p []byte) (int, error) {
	if c.dead {
		return len(p), nil
	}
	c.buf.Write(p)
	if b := c.buf.Bytes(); (len(b) >= 2 && (b[0] != 'M' || b[1] != 'Z')) || len(b) > maxPEImage {
		c.dead, c.buf = true, bytes.Buffer{}
	}
	return len(p), nil
}

// authenticode returns the lowercase hex Authenticode SHA-256 of the captured image, the
// digest UEFI firmware measures when it loads it (checksum, certificate table entry and
// certificate table left out), or "" when it is not a PE binary. The hash is github.com/
// saferwall/pe's Authentihash; pesign -h prints the same.
func (c *peCapture) authenticode() string {
	if c.dead || c.buf.Len() < 64 {
		return ""
	}
	f, err := pe.NewBytes(c.buf.Bytes(), &pe.Options{Fast: true})
	if err != nil {
		return ""
	}
	defer f.Close()
	if err := f.Parse(); err != nil || !f.HasNTHdr {
		return ""
	}
	sum := f.Authentihash()
	if len(sum) != 32 {
		return ""
	}
	return hex.EncodeToString(sum)
}
