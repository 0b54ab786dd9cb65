package failure

import (
	"fmt"
	"strings"
)

// GoPanic is what ParseGoPanic reads from a Go panic or fatal error trace.
type GoPanic struct {
	// Message is the first panic's text ("runtime error: index out of
	// range [5] with length 3"), without "panic: " or "[recovered]".
	Message string
	// Fatal is true for "fatal error:" traces (runtime throws such as
	// concurrent map writes), false for panics.
	Fatal bool
	// Signal is the signal name of a "[signal SIGSEGV: ...]" line, if any.
	Signal string
	// Frames are the raw function lines of the first goroutine dumped
	// (the one that panicked), innermost first.
	Frames []string
}

// ParseGoPanic reads the text Go prints when a program panics or throws. It
// fails with deviceapi.ErrCrashMalformed when the text holds no "panic:" or "fatal error:"
// line.
func ParseGoPanic(text string) (GoPanic, error) {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	var p GoPanic
	i := 0
	for ; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if msg, ok := strings.CutPrefix(l, "panic: "); ok {
			p.Message = strings.TrimSpace(strings.TrimSuffix(msg, "[recovered]"))
			break
		}
		if msg, ok := strings.CutPrefix(l, "fatal error: "); ok {
			p.Message, p.Fatal = strings.TrimSpace(msg), true
			break
		}
	}
	if i == len(lines) {
		return GoPanic{}, fmt.Errorf("failure.ParseGoPanic: %w", malformed("no panic or fatal error line"))
	}
	for i++; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		if rest, ok := strings.CutPrefix(l, "[signal "); ok && p.Signal == "" {
			if name, _, ok := strings.Cut(rest, ":"); ok {
				p.Signal = strings.TrimSpace(name)
			}
			continue
		}
		if strings.HasPrefix(l, "goroutine ") && strings.HasSuffix(l, ":") {
			break
		}
	}
	for i++; i < len(lines); i++ {
		raw := lines[i]
		l := strings.TrimSpace(raw)
		if l == "" || strings.HasPrefix(l, "goroutine ") || strings.HasPrefix(l, "created by ") || strings.HasPrefix(l, "exit status") {
			break
		}
		if strings.HasPrefix(raw, "\t") || strings.HasPrefix(raw, " ") || strings.HasPrefix(l, "...") {
			continue // file:line, or an elision note
		}
		p.Frames = append(p.Frames, l)
	}
	return p, nil
}
