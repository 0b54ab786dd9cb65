package clienv

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/testenv"
)

// TestProgressLines pins what a long upload prints on stderr: nothing before the first
// interval, then one line per interval with the share and the sizes.
func TestProgressLines(t *testing.T) {
	clock := time.Unix(0, 0)
	var out bytes.Buffer
	p := newProgress(&out, "uploading rootfs.img", 300e6, 2*time.Second, func() time.Time { return clock })
	r := progressReader{r: strings.NewReader(strings.Repeat("x", 3000)), p: p}
	buf := make([]byte, 1000)
	for _, step := range []time.Duration{time.Second, time.Second, time.Second} {
		clock = clock.Add(step)
		if _, err := io.ReadFull(r, buf); err != nil {
			t.Fatal(err)
		}
		p.done += 100e6 - 1000 // stand for the rest of each 100 MB
	}
	want := "uploading rootfs.img: 33% (100 MB of 300 MB)\n" // at 2 s; the next is due at 4 s
	if diff := cmp.Diff(out.String(), want); diff != "" {
		t.Errorf("progress (-got +want):\n%s", diff)
	}
}

// TestWaiting: a wait longer than the interval is announced with the time so far; a short one
// prints nothing.
func TestWaiting(t *testing.T) {
	var out syncBuffer
	waiting(&out, "quick", time.Hour)()
	if out.String() != "" {
		t.Fatalf("a short wait printed %q", out.String())
	}
	done := waiting(&out, "the server builds the deltas", time.Millisecond)
	testenv.WaitFor(t, "the waiting line", func() bool { return strings.Contains(out.String(), "\n") })
	done()
	if line, _, _ := strings.Cut(out.String(), "\n"); !strings.HasPrefix(line, "the server builds the deltas (") || !strings.HasSuffix(line, " so far)") {
		t.Errorf("waiting printed %q", out.String())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
