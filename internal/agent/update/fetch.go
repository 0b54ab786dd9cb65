package update

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rampartsec/rampart/internal/watchdog"
	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Limits bound what the updater downloads and how long it waits.
type Limits struct {
	// MaxImageSize refuses any image or delta larger than this, whatever
	// the metadata says. Zero means 4 GiB.
	MaxImageSize int64
	// MinRate and RateWindow defend against slow retrieval: a transfer that
	// moves fewer than MinRate bytes per second over any RateWindow is
	// abandoned. Zero means 1 KiB/s over 30 s.
	MinRate    int64
	RateWindow time.Duration
	// Attempts is how many times one run retries (resuming) a broken
	// download. Zero means 3.
	Attempts int
	// MetadataDeadline bounds the download of one metadata file, whatever
	// its rate. Zero means 5 minutes.
	MetadataDeadline time.Duration
}

func (l Limits) withDefaults() Limits {
	if l.MaxImageSize == 0 {
		l.MaxImageSize = 4 << 30
	}
	if l.MinRate == 0 {
		l.MinRate = 1 << 10
	}
	if l.RateWindow == 0 {
		l.RateWindow = 30 * time.Second
	}
	if l.Attempts == 0 {
		l.Attempts = 3
	}
	if l.MetadataDeadline == 0 {
		l.MetadataDeadline = 5 * time.Minute
	}
	return l
}

// watch returns a context cancelled with ErrSlowRetrieval when fewer than
// minRate bytes per second are counted in any window, and the counter to
// add transferred bytes to.
func watch(ctx context.Context, l Limits) (context.Context, *atomic.Int64, func()) {
	return watchdog.WithWatch(ctx, watchdog.PerSecond(l.MinRate, l.RateWindow), func(moved int64) error {
		return fmt.Errorf("%w: %d bytes in %s", ErrSlowRetrieval, moved, l.RateWindow)
	})
}

// maxDrain is how much of an error answer is read to keep its connection; a longer one is
// closed with its connection.
const maxDrain = 4 << 10

// tufFetcher implements go-tuf's fetcher.Fetcher with a context, the rate
// watchdog and strict length limits.
type tufFetcher struct {
	ctx    context.Context
	client *http.Client
	limits Limits
	// prefetched answers a URL once with what was downloaded from it a moment earlier in the
	// same check-in (see Updater.client), rather than asking the server again.
	prefetched map[string]prefetch
	// record names a URL whose last downloaded bytes are kept in recorded.
	record   string
	recorded []byte
}

// prefetch is one earlier answer: the file, or the error its download returned.
type prefetch struct {
	data []byte
	err  error
}

func (f *tufFetcher) DownloadFile(url string, maxLength int64, _ time.Duration) ([]byte, error) {
	if p, ok := f.prefetched[url]; ok {
		delete(f.prefetched, url)
		if p.err == nil && int64(len(p.data)) > maxLength {
			return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than %d bytes: %v", url, maxLength, ErrTooLarge)}
		}
		if p.err == nil && url == f.record {
			f.recorded = p.data
		}
		return p.data, p.err
	}
	b, err := f.download(url, maxLength)
	if err == nil && url == f.record {
		f.recorded = b
	}
	return b, err
}

func (f *tufFetcher) download(url string, maxLength int64) ([]byte, error) {
	ctx, cancel := context.WithTimeoutCause(f.ctx, f.limits.MetadataDeadline,
		fmt.Errorf("%w: no whole file within %s", ErrSlowRetrieval, f.limits.MetadataDeadline))
	defer cancel()
	ctx, n, stop := watch(ctx, f.limits)
	defer stop()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, watchdog.Cause(ctx, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Read the short error answer (the 404 of the next root, asked on every check-in), so
		// that the connection is kept for the next request rather than closed: a new one costs
		// a TLS handshake on both sides.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxDrain))
		return nil, &metadata.ErrDownloadHTTP{StatusCode: resp.StatusCode, URL: url}
	}
	if resp.ContentLength > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: %d bytes announced, limit %d: %v", url, resp.ContentLength, maxLength, ErrTooLarge)}
	}
	b, err := io.ReadAll(io.LimitReader(watchdog.Reader(resp.Body, n), maxLength+1))
	if err != nil {
		return nil, watchdog.Cause(ctx, err)
	}
	if int64(len(b)) > maxLength {
		return nil, &metadata.ErrDownloadLengthMismatch{Msg: fmt.Sprintf("%s: more than %d bytes: %v", url, maxLength, ErrTooLarge)}
	}
	return b, nil
}

// downloader fetches targets into staging files with resume.
type downloader struct {
	fs     FS
	client *http.Client
	limits Limits
	// rangeRequests counts resumed requests (for status and tests).
	rangeRequests int
}

// fetch downloads url into part until it holds exactly length bytes whose
// SHA-256 is sum, resuming a partial file with an HTTP Range request. A
// file that does not verify is removed.
func (d *downloader) fetch(ctx context.Context, url, part string, length int64, sum []byte) error {
	if length > d.limits.MaxImageSize {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, length, d.limits.MaxImageSize)
	}
	var err error
	for range d.limits.Attempts {
		if err = d.attempt(ctx, url, part, length); err == nil {
			break
		}
		// Size and rate failures are not transient; the partial file
		// is not trusted either.
		if errors.Is(err, ErrTooLarge) || errors.Is(err, ErrSlowRetrieval) || ctx.Err() != nil {
			_ = d.fs.Remove(part)
			return err
		}
	}
	if err != nil {
		// Transient failures keep the partial file: the next run resumes.
		return err
	}
	ok, err := d.verify(part, length, sum)
	if err != nil {
		return err
	}
	if !ok {
		_ = d.fs.Remove(part)
		return fmt.Errorf("%s: %w", url, ErrVerification)
	}
	return nil
}

func (d *downloader) verify(part string, length int64, sum []byte) (bool, error) {
	f, err := d.fs.OpenFile(part, os.O_RDONLY, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(f, length+1))
	if err != nil {
		return false, err
	}
	return n == length && string(h.Sum(nil)) == string(sum), nil
}

func (d *downloader) attempt(ctx context.Context, url, part string, length int64) error {
	f, err := d.fs.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	have := st.Size()
	if have > length {
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	}
	if have == length {
		return nil
	}
	wctx, n, stop := watch(ctx, d.limits)
	defer stop()
	req, err := http.NewRequestWithContext(wctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(have, 10)+"-")
		d.rangeRequests++
	}
	resp, err := d.client.Do(req)
	if err != nil {
		return watchdog.Cause(wctx, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusPartialContent && have > 0:
		if start, ok := rangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return fmt.Errorf("%s: unexpected Content-Range %q", url, resp.Header.Get("Content-Range"))
		}
	case resp.StatusCode == http.StatusOK:
		if err := f.Truncate(0); err != nil {
			return err
		}
		have = 0
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable:
		if err := f.Truncate(0); err != nil {
			return err
		}
		return fmt.Errorf("%s: range not satisfiable", url)
	default:
		return fmt.Errorf("%s: HTTP %d", url, resp.StatusCode)
	}
	if _, err := f.Seek(have, io.SeekStart); err != nil {
		return err
	}
	remaining := length - have
	// Buffered so the file sees whole 64 KiB writes whatever the network's
	// chunking: fewer system calls, and a write count the power-cut test
	// can reproduce.
	bw := bufio.NewWriterSize(f, 64<<10)
	w := &countWriter{w: bw, limit: remaining}
	got, err := io.CopyBuffer(w, io.LimitReader(watchdog.Reader(resp.Body, n), remaining+1), make([]byte, 32<<10))
	if errors.Is(err, ErrTooLarge) {
		_ = f.Truncate(0)
		return fmt.Errorf("%s: %w", url, err)
	}
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if serr := f.Sync(); err == nil {
		err = serr
	}
	// A body cut short as the watchdog fired may end without an error.
	if c := context.Cause(wctx); c != nil && errors.Is(c, ErrSlowRetrieval) {
		return fmt.Errorf("%s: %w", url, c)
	}
	if err != nil {
		return watchdog.Cause(wctx, err)
	}
	if got < remaining {
		return fmt.Errorf("%s: %w after %d of %d bytes", url, io.ErrUnexpectedEOF, have+got, length)
	}
	return nil
}

func rangeStart(h string) (int64, bool) {
	rest, ok := strings.CutPrefix(h, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}
