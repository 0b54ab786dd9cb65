package clienv

import (
	"fmt"
	"io"
	"sync"
	"time"
)

// ProgressEvery is how long a transfer or a wait runs before its first progress line on stderr,
// and then between two lines. Quick commands print none.
const ProgressEvery = 2 * time.Second

// progress writes "what: 45% (120 MB of 268 MB)" lines for a transfer of total bytes.
type progress struct {
	w     io.Writer
	what  string
	total int64
	every time.Duration
	now   func() time.Time

	done int64
	next time.Time
}

func newProgress(w io.Writer, what string, total int64, every time.Duration, now func() time.Time) *progress {
	return &progress{w: w, what: what, total: total, every: every, now: now, next: now().Add(every)}
}

// add counts n more bytes and prints a line when one is due.
func (p *progress) add(n int) {
	p.done += int64(n)
	if t := p.now(); !t.Before(p.next) {
		p.next = t.Add(p.every)
		fmt.Fprintf(p.w, "%s: %d%% (%s of %s)\n", p.what, p.done*100/max(p.total, 1), formatBytes(p.done), formatBytes(p.total))
	}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (r progressReader) Read(b []byte) (int, error) {
	n, err := r.r.Read(b)
	r.p.add(n)
	return n, err
}

// ProgressReader wraps r, of total bytes, so that reading it reports progress on stderr when it
// takes longer than ProgressEvery.
func (e *Env) ProgressReader(r io.Reader, total int64, what string) io.Reader {
	return progressReader{r: r, p: newProgress(e.Stderr, what, total, ProgressEvery, time.Now)}
}

// Waiting says on stderr what the command is waiting for, when the wait passes ProgressEvery,
// and again every ProgressEvery with the time so far; done stops it.
func (e *Env) Waiting(what string) (done func()) {
	return waiting(e.Stderr, what, ProgressEvery)
}

func waiting(w io.Writer, what string, every time.Duration) (done func()) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		start := time.Now()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(w, "%s (%s so far)\n", what, time.Since(start).Round(time.Second))
			}
		}
	})
	return func() { close(stop); wg.Wait() }
}

// formatBytes is a size for people: 268 MB, 3.4 MB, 980 kB, 12 B.
func formatBytes(n int64) string {
	switch {
	case n >= 100e6:
		return fmt.Sprintf("%.0f MB", float64(n)/1e6)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
