package crash

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// coredumpMessageID is the journal MESSAGE_ID of systemd-coredump entries.
const coredumpMessageID = "fc2e22bc6ee647b6b90729ab34a250b1"

// maxJournalField bounds one binary field of a journal export.
const maxJournalField = 1 << 20

// parseJournalExport reads entries in the journal export format
// (journalctl -o export): KEY=value lines, or KEY, a newline, a 64-bit
// little-endian length and that many bytes then a newline for values that
// hold newlines; entries end at an empty line. Entries that are not
// systemd-coredump records are skipped.
func parseJournalExport(b []byte) ([]deviceapi.CrashReport, error) {
	var reps []deviceapi.CrashReport
	entries, err := splitJournalEntries(b)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.fields["MESSAGE_ID"] != coredumpMessageID && e.fields["COREDUMP_SIGNAL"] == "" {
			continue
		}
		r, err := coredumpReport(e)
		if err != nil {
			return nil, err
		}
		reps = append(reps, r)
	}
	return reps, nil
}

type journalEntry struct {
	fields map[string]string
	raw    []byte // the entry's bytes, for its ID
}

func splitJournalEntries(b []byte) ([]journalEntry, error) {
	var out []journalEntry
	r := bufio.NewReader(bytes.NewReader(b))
	cur := journalEntry{fields: map[string]string{}}
	start := 0
	pos := 0
	flush := func() {
		if len(cur.fields) > 0 {
			cur.raw = b[start:pos]
			out = append(out, cur)
		}
		cur = journalEntry{fields: map[string]string{}}
		start = pos
	}
	for {
		line, err := r.ReadBytes('\n')
		pos += len(line)
		if len(line) == 0 && err != nil {
			break
		}
		l := bytes.TrimSuffix(line, []byte("\n"))
		if len(l) == 0 {
			flush()
			if err != nil {
				break
			}
			continue
		}
		if k, v, ok := bytes.Cut(l, []byte("=")); ok {
			cur.fields[string(k)] = string(v)
		} else {
			// Binary field: KEY\n<le64 size><data>\n
			var size [8]byte
			if _, err := io.ReadFull(r, size[:]); err != nil {
				return nil, fmt.Errorf("journal export: field %q: truncated size", clip(string(l), 64))
			}
			n := binary.LittleEndian.Uint64(size[:])
			if n > maxJournalField || n > uint64(len(b)) {
				return nil, fmt.Errorf("journal export: field %q: size %d too large", clip(string(l), 64), n)
			}
			data := make([]byte, n+1)
			if _, err := io.ReadFull(r, data); err != nil || data[n] != '\n' {
				return nil, fmt.Errorf("journal export: field %q: truncated value", clip(string(l), 64))
			}
			pos += 8 + int(n) + 1
			cur.fields[string(l)] = string(data[:n])
		}
		if err != nil {
			break
		}
	}
	flush()
	return out, nil
}

func coredumpReport(e journalEntry) (deviceapi.CrashReport, error) {
	f := e.fields
	r := deviceapi.CrashReport{
		ID:        reportID(e.raw),
		Program:   f["COREDUMP_EXE"],
		Component: f["COREDUMP_PACKAGE_NAME"],
		Version:   f["COREDUMP_PACKAGE_VERSION"],
		Signal:    parseSignal(f["COREDUMP_SIGNAL"]),
		Frames:    coredumpFrames(f["MESSAGE"]),
	}
	if r.Program == "" {
		r.Program = f["COREDUMP_COMM"]
	}
	if r.Program == "" {
		return deviceapi.CrashReport{}, errors.New("coredump entry names no program (COREDUMP_EXE or COREDUMP_COMM)")
	}
	if r.Signal == 0 {
		r.Signal = parseSignal(f["COREDUMP_SIGNAL_NAME"])
	}
	if r.Signal == 0 {
		r.FaultType = "coredump"
	}
	for _, key := range []string{"COREDUMP_TIMESTAMP", "__REALTIME_TIMESTAMP"} {
		if us, err := strconv.ParseInt(f[key], 10, 64); err == nil && us > 0 {
			r.Time = time.UnixMicro(us).UTC()
			break
		}
	}
	if r.Time.IsZero() {
		return deviceapi.CrashReport{}, errors.New("coredump entry has no COREDUMP_TIMESTAMP")
	}
	return r, nil
}

// coredumpFrames takes the frames of the first thread in a systemd-coredump
// MESSAGE ("Stack trace of thread N:" then "#0  0x... func (module + 0x...)"
// lines); the first thread listed is the one that crashed.
func coredumpFrames(msg string) []string {
	var frames []string
	inStack := false
	for _, l := range strings.Split(msg, "\n") {
		l = strings.TrimSpace(l)
		switch {
		case strings.HasPrefix(l, "Stack trace of thread"):
			if inStack {
				return frames
			}
			inStack = true
		case inStack && strings.HasPrefix(l, "#"):
			frames = append(frames, l)
		case inStack && l == "":
			if len(frames) > 0 {
				return frames
			}
		}
	}
	return frames
}

func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not RFC 3339", clip(s, 64))
	}
	return t.UTC(), nil
}

func unixNano(n int64) time.Time { return time.Unix(0, n).UTC() }
