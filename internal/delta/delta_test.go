package delta

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// image returns deterministic pseudo-random bytes that compress poorly on
// their own, like a binary.
func image(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// edit returns a copy of b with a few inserted, removed and changed runs.
func edit(b []byte, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 7))
	out := append([]byte(nil), b...)
	for range 8 {
		if len(out) < 64 {
			break
		}
		at := r.IntN(len(out) - 32)
		switch r.IntN(3) {
		case 0:
			ins := image(r.Uint64(), 16+r.IntN(200))
			out = append(out[:at], append(ins, out[at:]...)...)
		case 1:
			out = append(out[:at], out[at+16:]...)
		default:
			copy(out[at:], image(r.Uint64(), 16))
		}
	}
	return out
}

func target(b []byte) Target {
	s := sha256.Sum256(b)
	return Target{Length: int64(len(b)), SHA256: s[:]}
}

func build(t testing.TB, base, next []byte) []byte {
	t.Helper()
	var p bytes.Buffer
	if err := Build(context.Background(), &p, base, bytes.NewReader(next), int64(len(next)), BuildOptions{}); err != nil {
		t.Fatalf("Build: %v", err)
	}
	return p.Bytes()
}

func TestRoundTrip(t *testing.T) {
	base := image(1, 300<<10)
	tests := []struct {
		name string
		base []byte
		next []byte
	}{
		{"edited", base, edit(base, 2)},
		{"identical", base, base},
		{"empty base", nil, image(3, 10<<10)},
		{"empty new", base, nil},
		{"unrelated", base, image(4, 50<<10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			patch := build(t, tc.base, tc.next)
			var out bytes.Buffer
			if err := Apply(context.Background(), &out, tc.base, bytes.NewReader(patch), target(tc.next), ApplyOptions{}); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			if diff := cmp.Diff(sha256.Sum256(out.Bytes()), sha256.Sum256(tc.next)); diff != "" {
				t.Errorf("output (-got +want):\n%s", diff)
			}
		})
	}
}

func TestPatchIsSmall(t *testing.T) {
	base := image(1, 1<<20)
	next := edit(base, 9)
	patch := build(t, base, next)
	if got, limit := len(patch), len(next)/20; got > limit {
		t.Errorf("patch is %d bytes for a lightly edited %d-byte image, want at most %d", got, len(next), limit)
	}
}

func TestApplyRefuses(t *testing.T) {
	base := image(1, 200<<10)
	next := edit(base, 5)
	patch := build(t, base, next)
	good := target(next)

	flipped := append([]byte(nil), patch...)
	flipped[len(flipped)/2] ^= 0x40

	otherHash := target(next)
	otherHash.SHA256 = append([]byte(nil), otherHash.SHA256...)
	otherHash.SHA256[0] ^= 1

	shorter := good
	shorter.Length--

	longer := good
	longer.Length++

	tests := []struct {
		name  string
		base  []byte
		patch []byte
		want  Target
		opts  ApplyOptions
		is    error
	}{
		{"wrong base", image(99, 200<<10), patch, good, ApplyOptions{}, ErrBase},
		{"tampered byte", base, flipped, good, ApplyOptions{}, nil},
		{"truncated", base, patch[:len(patch)-7], good, ApplyOptions{}, nil},
		{"hash differs", base, patch, otherHash, ApplyOptions{}, ErrMismatch},
		{"longer than signed", base, patch, shorter, ApplyOptions{}, ErrTooLarge},
		{"shorter than signed", base, patch, longer, ApplyOptions{}, ErrMismatch},
		{"window above limit", base, patch, good, ApplyOptions{MaxWindow: 1 << 10}, ErrTooLarge},
		{"not zstd", base, []byte("hello, this is not a patch"), good, ApplyOptions{}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Apply(context.Background(), &bytes.Buffer{}, tc.base, bytes.NewReader(tc.patch), tc.want, tc.opts)
			if err == nil {
				t.Fatal("Apply accepted a bad patch")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("Apply error = %v, want %v", err, tc.is)
			}
		})
	}
}

// TestApplyOptions: a base named by the caller's SHA-256 rather than hashed, and an output
// whose SHA-256 the caller checks itself, still refuse what they must.
func TestApplyOptions(t *testing.T) {
	base := image(1, 200<<10)
	next := edit(base, 5)
	patch := build(t, base, next)
	good := target(next)
	baseSum := sha256.Sum256(base)
	otherSum := sha256.Sum256(image(99, 10))
	otherHash := target(next)
	otherHash.SHA256 = otherSum[:]
	shorter, longer := good, good
	shorter.Length--
	longer.Length++

	tests := []struct {
		name string
		want Target
		opts ApplyOptions
		is   error // nil: accepted
	}{
		{"base named by the caller", good, ApplyOptions{BaseSHA256: baseSum[:]}, nil},
		{"base named as another", good, ApplyOptions{BaseSHA256: otherSum[:]}, ErrBase},
		{"caller hashes", good, ApplyOptions{CallerHashes: true}, nil},
		// The caller's own hash must refuse this one: Apply checked its length only.
		{"caller hashes, hash differs", otherHash, ApplyOptions{CallerHashes: true}, nil},
		{"caller hashes, longer than signed", shorter, ApplyOptions{CallerHashes: true}, ErrTooLarge},
		{"caller hashes, shorter than signed", longer, ApplyOptions{CallerHashes: true}, ErrMismatch},
		{"hash differs, base named by the caller", otherHash, ApplyOptions{BaseSHA256: baseSum[:]}, ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Apply(context.Background(), &out, base, bytes.NewReader(patch), tc.want, tc.opts)
			if tc.is == nil {
				if err != nil {
					t.Fatalf("Apply: %v", err)
				}
				if !bytes.Equal(out.Bytes(), next) {
					t.Error("output is not the new image")
				}
				return
			}
			if !errors.Is(err, tc.is) {
				t.Errorf("Apply error = %v, want %v", err, tc.is)
			}
		})
	}
	if err := Apply(context.Background(), &bytes.Buffer{}, base, bytes.NewReader(patch), good, ApplyOptions{BaseSHA256: baseSum[:4]}); err == nil {
		t.Error("Apply accepted a base SHA-256 of 4 bytes")
	}
}

// TestDecodersReused: decoders lent by one Decoders apply patches of other bases one after
// another and at once, each only against its own base: a kept decoder forgets the last
// patch's dictionary (a patch for it, given another base, is ErrBase), and no longer touches
// its base, which is unmapped between the calls.
func TestDecodersReused(t *testing.T) {
	var decoders Decoders
	dir := t.TempDir()
	type pair struct {
		path        string
		next, patch []byte
	}
	var pairs []pair
	for i := range 4 {
		base := image(uint64(10+i), 150<<10)
		next := edit(base, uint64(20+i))
		p := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(p, base, 0o600); err != nil {
			t.Fatal(err)
		}
		pairs = append(pairs, pair{p, next, build(t, base, next)})
	}
	apply := func(p pair, patch []byte) error {
		base, release, err := MapFile(p.path)
		if err != nil {
			return err
		}
		defer release()
		var out bytes.Buffer
		if err := Apply(context.Background(), &out, base, bytes.NewReader(patch), target(p.next), ApplyOptions{Decoders: &decoders}); err != nil {
			return err
		}
		if !bytes.Equal(out.Bytes(), p.next) {
			return errors.New("output is not the new image")
		}
		return nil
	}
	for round := range 3 {
		for i, p := range pairs {
			if err := apply(p, p.patch); err != nil {
				t.Fatalf("round %d, patch %d: %v", round, i, err)
			}
			// The last patch, given the next base: its dictionary is not kept.
			other := pairs[(i+1)%len(pairs)]
			if err := apply(other, p.patch); !errors.Is(err, ErrBase) {
				t.Fatalf("round %d: patch %d applied to base %d: %v, want ErrBase", round, i, (i+1)%len(pairs), err)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4*len(pairs))
	for range 4 {
		for _, p := range pairs {
			wg.Go(func() { errs <- apply(p, p.patch) })
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestApplyInvalidTarget(t *testing.T) {
	err := Apply(context.Background(), &bytes.Buffer{}, nil, bytes.NewReader(nil), Target{Length: 1}, ApplyOptions{})
	if err == nil {
		t.Fatal("Apply accepted a target without a hash")
	}
}

func TestBuildLengthMismatch(t *testing.T) {
	next := image(2, 1000)
	err := Build(context.Background(), &bytes.Buffer{}, nil, bytes.NewReader(next), 999, BuildOptions{})
	if err == nil {
		t.Fatal("Build accepted a reader longer than the declared length")
	}
}

func TestApplyCancelled(t *testing.T) {
	base := image(1, 100<<10)
	next := edit(base, 3)
	patch := build(t, base, next)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Apply(ctx, &bytes.Buffer{}, base, bytes.NewReader(patch), target(next), ApplyOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Apply error = %v, want context.Canceled", err)
	}
}

func TestMapFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "img")
	want := image(8, 12345)
	if err := os.WriteFile(p, want, 0o600); err != nil {
		t.Fatal(err)
	}
	got, release, err := MapFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("mapped bytes differ from the file")
	}
	if err := release(); err != nil {
		t.Fatal(err)
	}
}

func TestWindowFor(t *testing.T) {
	tests := []struct {
		base, next int64
		max        int
		want       int
	}{
		{0, 10, 0, minWindow},
		{3 << 20, 3 << 20, 0, 8 << 20},
		{4 << 20, 4 << 20, 0, 8 << 20},
		{100 << 20, 100 << 20, 64 << 20, 64 << 20},
		{100 << 20, 100 << 20, 100 << 20, 64 << 20},
	}
	for _, tc := range tests {
		if got := WindowFor(tc.base, tc.next, tc.max); got != tc.want {
			t.Errorf("WindowFor(%d, %d, %d) = %d, want %d", tc.base, tc.next, tc.max, got, tc.want)
		}
	}
}

// FuzzApply feeds arbitrary patches to Apply: it must never panic, never
// write more than the signed length and only succeed on the signed bytes.
func FuzzApply(f *testing.F) {
	base := image(1, 64<<10)
	next := edit(base, 2)
	f.Add(build(f, base, next))
	f.Add(build(f, base, base))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	want := target(next)
	f.Fuzz(func(t *testing.T, patch []byte) {
		var out bytes.Buffer
		err := Apply(context.Background(), &out, base, bytes.NewReader(patch), want, ApplyOptions{MaxWindow: 8 << 20})
		if int64(out.Len()) > want.Length {
			t.Fatalf("Apply wrote %d bytes, signed length is %d", out.Len(), want.Length)
		}
		if err == nil && !bytes.Equal(out.Bytes(), next) {
			t.Fatal("Apply succeeded with output that is not the signed image")
		}
	})
}
