package crash

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/rampartsec/rampart/internal/agent/durable"
	"github.com/rampartsec/rampart/internal/deviceapi"
)

const batchPrefix, batchSuffix = "batch-", ".json"

// batchFiles lists the outbox's batches in the order they were written.
func (c *Collector) batchFiles() ([]spoolFile, error) {
	files, err := listFiles(c.cfg.OutboxDir)
	if err != nil {
		return nil, err
	}
	out := files[:0]
	for _, f := range files {
		if strings.HasPrefix(f.name, batchPrefix) && strings.HasSuffix(f.name, batchSuffix) {
			out = append(out, f)
		}
	}
	// Names carry a zero-padded sequence number: sort by name, not time.
	slices.SortFunc(out, func(a, b spoolFile) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

func (c *Collector) readBatch(name string) (deviceapi.CrashBatch, error) {
	b, err := os.ReadFile(filepath.Join(c.cfg.OutboxDir, name))
	if err != nil {
		return deviceapi.CrashBatch{}, err
	}
	return deviceapi.DecodeCrashBatch(bytes.NewReader(b))
}

// queuedIDs collects the IDs of reports already in the outbox. A batch that
// no longer decodes (a disk fault) is dropped.
func (c *Collector) queuedIDs() (map[string]bool, error) {
	files, err := c.batchFiles()
	if err != nil {
		return nil, err
	}
	ids := map[string]bool{}
	for _, f := range files {
		b, err := c.readBatch(f.name)
		if err != nil {
			c.log.Warn("outbox batch unreadable; dropped", "file", f.name, "err", err)
			c.remove(filepath.Join(c.cfg.OutboxDir, f.name))
			continue
		}
		for _, r := range b.Reports {
			ids[r.ID] = true
		}
	}
	return ids, nil
}

// nextSeq is one more than the highest batch number in the outbox.
func (c *Collector) nextSeq() (uint64, error) {
	files, err := c.batchFiles()
	if err != nil {
		return 0, err
	}
	var seq uint64
	for _, f := range files {
		n, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimPrefix(f.name, batchPrefix), batchSuffix), 10, 64)
		if err == nil && n >= seq {
			seq = n + 1
		}
	}
	return seq, nil
}

// writeBatches packs reports into batches within the server's limits and
// writes each atomically. It returns how many reports were written.
func (c *Collector) writeBatches(reports []deviceapi.CrashReport) (int, error) {
	if len(reports) == 0 {
		return 0, nil
	}
	seq, err := c.nextSeq()
	if err != nil {
		return 0, err
	}
	const overhead = len(`{"reports":[]}`)
	written := 0
	var cur []deviceapi.CrashReport
	size := overhead
	flush := func() error {
		if len(cur) == 0 {
			return nil
		}
		b, err := json.Marshal(deviceapi.CrashBatch{Reports: cur})
		if err != nil {
			return err
		}
		name := fmt.Sprintf("%s%020d%s", batchPrefix, seq, batchSuffix)
		if err := durable.WriteFile(filepath.Join(c.cfg.OutboxDir, name), b); err != nil {
			return err
		}
		seq++
		written += len(cur)
		cur, size = nil, overhead
		return nil
	}
	for _, r := range reports {
		b, err := json.Marshal(r)
		if err != nil {
			return written, err
		}
		if len(cur) == deviceapi.MaxCrashBatchReports || size+len(b)+1 > deviceapi.MaxCrashBatchBytes {
			if err := flush(); err != nil {
				return written, err
			}
		}
		cur = append(cur, r)
		size += len(b) + 1
	}
	return written, flush()
}

// capOutbox drops the oldest batches until the outbox fits its cap.
func (c *Collector) capOutbox() int {
	files, err := c.batchFiles()
	if err != nil {
		c.log.Warn("outbox not listed", "err", err)
		return 0
	}
	var total int64
	for _, f := range files {
		total += f.size
	}
	dropped := 0
	for len(files) > 1 && total > c.cfg.MaxOutboxBytes {
		c.remove(filepath.Join(c.cfg.OutboxDir, files[0].name))
		total -= files[0].size
		files = files[1:]
		dropped++
	}
	if dropped > 0 {
		c.log.Warn("crash outbox over its cap; oldest batches dropped", "dropped", dropped, "cap_bytes", c.cfg.MaxOutboxBytes)
	}
	return dropped
}

// Flush uploads the outbox's batches in order. An acknowledged batch is
// removed; a batch the server refused for good (ErrRejected) is dropped;
// any other error stops the flush and leaves the batch for the next try.
func (c *Collector) Flush(ctx context.Context, u Uploader) (Stats, error) {
	var st Stats
	files, err := c.batchFiles()
	if err != nil {
		return st, fmt.Errorf("crash.Flush: %w", err)
	}
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return st, fmt.Errorf("crash.Flush: %w", err)
		}
		path := filepath.Join(c.cfg.OutboxDir, f.name)
		b, err := c.readBatch(f.name)
		if err != nil {
			c.log.Warn("outbox batch unreadable; dropped", "file", f.name, "err", err)
			c.remove(path)
			st.DroppedBatches++
			continue
		}
		err = u.Upload(ctx, b)
		switch {
		case err == nil:
			c.remove(path)
			st.Uploaded++
			st.UploadedReports += len(b.Reports)
		case errors.Is(err, ErrRejected):
			c.log.Warn("crash batch refused by the server; dropped", "file", f.name, "reports", len(b.Reports), "err", err)
			c.remove(path)
			st.DroppedBatches++
		default:
			return st, fmt.Errorf("crash.Flush: upload %s: %w", f.name, err)
		}
	}
	return st, nil
}

// Cycle collects the spool and flushes the outbox.
func (c *Collector) Cycle(ctx context.Context, u Uploader) (Stats, error) {
	st, err := c.Collect(ctx)
	if err != nil {
		return st, err
	}
	fs, err := c.Flush(ctx, u)
	st.Uploaded, st.UploadedReports, st.DroppedBatches = fs.Uploaded, fs.UploadedReports, st.DroppedBatches+fs.DroppedBatches
	return st, err
}

// Pending counts the batches and reports waiting in the outbox.
func (c *Collector) Pending() (batches, reports int, err error) {
	return PendingIn(c.cfg.OutboxDir)
}

// PendingIn counts the batches and reports waiting in the outbox folder dir, writing nothing
// (for `rampart-agent status`); a missing folder holds none.
func PendingIn(dir string) (batches, reports int, err error) {
	files, err := listFiles(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("crash.Pending: %w", err)
	}
	for _, f := range files {
		if !strings.HasPrefix(f.name, batchPrefix) || !strings.HasSuffix(f.name, batchSuffix) {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, f.name))
		if err != nil {
			continue
		}
		batch, err := deviceapi.DecodeCrashBatch(bytes.NewReader(b))
		if err != nil {
			continue
		}
		batches++
		reports += len(batch.Reports)
	}
	return batches, reports, nil
}
