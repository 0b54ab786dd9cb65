// Package delta owns Rampart's binary patches: a zstd frame that encodes a
// new image with the previous image as a raw dictionary, built by the server
// at release-signing time and applied by the agent with bounded memory.
//
// It imports only the standard library and klauspost/compress, so both the
// server and the device agent (rampart-agent) may import it.
package delta

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/bits"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Sentinel errors returned by Apply.
var (
	// ErrMismatch means the patch produced an image whose length or SHA-256
	// differs from the signed target.
	ErrMismatch = errors.New("delta: output does not match the signed image")
	// ErrTooLarge means the patch tried to produce more bytes than the
	// signed length, or asked for a window above the configured limit.
	ErrTooLarge = errors.New("delta: patch exceeds limits")
	// ErrBase means the patch was built against another base image.
	ErrBase = errors.New("delta: patch was built against a different base image")
)

const (
	// DefaultMaxWindow bounds the decoder's history buffer on the device.
	// The decoder never holds more than this (plus two 128 KiB blocks) on the
	// heap; the base image is memory-mapped, not copied.
	DefaultMaxWindow = 256 << 20
	minWindow        = 1 << 20
)

// DictID derives the zstd dictionary ID that names a base image from its
// SHA-256, so that a patch applied to the wrong base fails before any output
// is written. It is never zero (zero means "no dictionary" in zstd).
func DictID(baseSHA256 []byte) uint32 {
	if len(baseSHA256) < 4 {
		return 1
	}
	id := binary.BigEndian.Uint32(baseSHA256[:4])
	if id == 0 {
		id = 1
	}
	return id
}

// WindowFor returns the zstd window used for a base and a new image of the
// given sizes: the smallest power of two that lets every byte of the new
// image reference any byte of the base, capped at maxWindow.
func WindowFor(baseLen, newLen int64, maxWindow int) int {
	need := baseLen + newLen
	w := minWindow
	if need > minWindow {
		w = 1 << bits.Len64(uint64(need-1))
	}
	if maxWindow > 0 && w > maxWindow {
		w = 1 << (bits.Len64(uint64(maxWindow)) - 1)
	}
	if w > zstd.MaxWindowSize {
		w = zstd.MaxWindowSize
	}
	return w
}

// BuildOptions tunes Build.
type BuildOptions struct {
	// MaxWindow caps the window written into the patch; devices refuse
	// patches whose window exceeds their own limit. Zero means DefaultMaxWindow.
	MaxWindow int
	// Level is the zstd encoder level; zero means zstd.SpeedBestCompression.
	Level zstd.EncoderLevel
}

// Build writes to dst a patch that turns base into the newLen bytes read
// from newImage. base is used as a raw zstd dictionary named by
// DictID(sha256(base)).
func Build(ctx context.Context, dst io.Writer, base []byte, newImage io.Reader, newLen int64, opts BuildOptions) error {
	maxWindow := opts.MaxWindow
	if maxWindow == 0 {
		maxWindow = DefaultMaxWindow
	}
	level := opts.Level
	if level == 0 {
		level = zstd.SpeedBestCompression
	}
	sum := sha256.Sum256(base)
	enc, err := zstd.NewWriter(dst,
		zstd.WithEncoderDictRaw(DictID(sum[:]), base),
		zstd.WithWindowSize(WindowFor(int64(len(base)), newLen, maxWindow)),
		zstd.WithEncoderLevel(level),
		zstd.WithEncoderConcurrency(1),
		zstd.WithEncoderCRC(true),
	)
	if err != nil {
		return fmt.Errorf("delta.Build: %w", err)
	}
	n, err := io.Copy(enc, ctxReader{ctx: ctx, r: io.LimitReader(newImage, newLen+1)})
	if err != nil {
		enc.Close()
		return fmt.Errorf("delta.Build: read new image: %w", err)
	}
	if n != newLen {
		enc.Close()
		return fmt.Errorf("delta.Build: new image is %d bytes, expected %d", n, newLen)
	}
	if err := enc.Close(); err != nil {
		return fmt.Errorf("delta.Build: %w", err)
	}
	return nil
}

// Target is what the signed metadata says the output must be.
type Target struct {
	Length int64
	SHA256 []byte
}

// ApplyOptions bounds Apply.
type ApplyOptions struct {
	// MaxWindow is the largest zstd window accepted; zero means DefaultMaxWindow.
	MaxWindow uint64
	// BaseSHA256, when set, is the SHA-256 the caller holds for base (the updater's record of
	// the committed slot, which it verified the file against): the dictionary is named from
	// it rather than from a hash of base. A base that is not what it says produces an output
	// that fails the check of the signed hash, which is what a patch built against another
	// base does once it gets past the dictionary ID.
	BaseSHA256 []byte
	// CallerHashes leaves the SHA-256 of the output to the caller, who hashes every byte it
	// is given itself (the updater's slot writer checks each component against its signed
	// length and SHA-256): Apply still writes no more than want.Length bytes and checks the
	// length, and the caller must refuse the output unless its own hash matches want.SHA256.
	CallerHashes bool
	// Decoders, when set, lends the decoder and takes it back for the next Apply (Decoders).
	Decoders *Decoders
}

// Decoders keeps the zstd decoders of patches applied, with their buffers, for the next Apply
// given the same Decoders: a decoder holds a history ring of the patch's window and two blocks
// (1.3 MiB for the smallest window), which a process applying many patches, such as the fleet
// simulator with one per device, would otherwise allocate and clear for each. It keeps them
// only while the garbage collector leaves them (sync.Pool), as large as the largest window
// applied; a device's agent, which applies one patch per release, is given none. A kept decoder
// holds no reference to a patch or a base between two calls. The zero value is ready; it is
// safe for concurrent use.
type Decoders struct {
	pool sync.Pool
}

// decoder returns a decoder of patch with dicts, from d when it has one.
func (d *Decoders) decoder(patch io.Reader, opts ...zstd.DOption) (*zstd.Decoder, error) {
	if d != nil {
		if dec, ok := d.pool.Get().(*zstd.Decoder); ok {
			// The options of the last patch go: its dictionary, then this one's are set.
			if err := dec.ResetWithOptions(patch, append([]zstd.DOption{zstd.WithDecoderDictDelete()}, opts...)...); err == nil {
				return dec, nil
			}
			dec.Close()
		}
	}
	return zstd.NewReader(patch, append([]zstd.DOption{zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true)}, opts...)...)
}

// done takes dec back after a patch that applied without an error, and closes it otherwise.
func (d *Decoders) done(dec *zstd.Decoder, ok bool) {
	if d == nil || !ok {
		dec.Close()
		return
	}
	// Let go of the patch's reader and of the base, which the caller may unmap once Apply returns.
	if err := dec.ResetWithOptions(nil, zstd.WithDecoderDictDelete()); err != nil {
		dec.Close()
		return
	}
	d.pool.Put(dec)
}

// Apply decodes patch against base and writes the result to dst, never more
// than want.Length bytes. It returns ErrMismatch when the output is not the
// signed image (with CallerHashes, only when its length is not), ErrTooLarge
// when the patch overflows its limits and ErrBase when the patch names
// another base. dst may hold partial output after an error; callers write to
// a staging file and discard it on error.
func Apply(ctx context.Context, dst io.Writer, base []byte, patch io.Reader, want Target, opts ApplyOptions) error {
	if want.Length < 0 || len(want.SHA256) != sha256.Size {
		return fmt.Errorf("delta.Apply: invalid target")
	}
	maxWindow := opts.MaxWindow
	if maxWindow == 0 {
		maxWindow = DefaultMaxWindow
	}
	baseSum := opts.BaseSHA256
	if baseSum == nil {
		sum := sha256.Sum256(base)
		baseSum = sum[:]
	} else if len(baseSum) != sha256.Size {
		return fmt.Errorf("delta.Apply: invalid base SHA-256")
	}
	dec, err := opts.Decoders.decoder(ctxReader{ctx: ctx, r: patch},
		zstd.WithDecoderDictRaw(DictID(baseSum), base),
		zstd.WithDecoderMaxWindow(maxWindow),
	)
	if err != nil {
		return fmt.Errorf("delta.Apply: %w", err)
	}
	applied := false
	defer func() { opts.Decoders.done(dec, applied) }()
	var h hash.Hash
	out := dst
	if !opts.CallerHashes {
		h = sha256.New()
		out = io.MultiWriter(dst, h)
	}
	n, err := io.Copy(out, io.LimitReader(dec, want.Length+1))
	if err != nil {
		return fmt.Errorf("delta.Apply: %w", classify(err))
	}
	if n > want.Length {
		return fmt.Errorf("delta.Apply: output longer than %d bytes: %w", want.Length, ErrTooLarge)
	}
	if err := check(h, n, want); err != nil {
		return err
	}
	applied = true
	return nil
}

// check compares the output's length and, when h hashed it, its SHA-256 with want.
func check(h hash.Hash, n int64, want Target) error {
	if n != want.Length {
		return fmt.Errorf("delta.Apply: got %d bytes, want %d: %w", n, want.Length, ErrMismatch)
	}
	if h == nil {
		return nil
	}
	if got := h.Sum(nil); string(got) != string(want.SHA256) {
		return fmt.Errorf("delta.Apply: sha256 %x, want %x: %w", got, want.SHA256, ErrMismatch)
	}
	return nil
}

func classify(err error) error {
	switch {
	case errors.Is(err, zstd.ErrUnknownDictionary):
		return fmt.Errorf("%w: %w", ErrBase, err)
	case errors.Is(err, zstd.ErrWindowSizeExceeded), errors.Is(err, zstd.ErrDecoderSizeExceeded):
		return fmt.Errorf("%w: %w", ErrTooLarge, err)
	}
	return err
}

// ctxReader stops a long copy when its context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
