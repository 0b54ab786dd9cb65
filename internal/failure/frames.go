package failure

import (
	"path"
	"regexp"
	"strings"
)

var (
	reFrameIndex   = regexp.MustCompile(`^#\d+\s+`)
	reGDBAddrIn    = regexp.MustCompile(`^0x[0-9a-fA-F]+\s+(in\s+)?`)
	reCoredumpSym  = regexp.MustCompile(`^(\S+) \(([^()\s]+) \+ (0x[0-9a-fA-F]+)\)$`)
	reBacktraceSym = regexp.MustCompile(`^([^\s()]+)\(([A-Za-z_][^()\s+]*)?(\+0x[0-9a-fA-F]+)?\)\s*(\[0x[0-9a-fA-F]+\])?$`)
	reOffset       = regexp.MustCompile(`\+0x[0-9a-fA-F]+$`)
	reTrailAddr    = regexp.MustCompile(`\s*\[0x[0-9a-fA-F]+\]$`)
	reLineNumber   = regexp.MustCompile(`:\d+(:\d+)?$`)
	reHex          = regexp.MustCompile(`0x[0-9a-fA-F]+`)
	reGoroutine    = regexp.MustCompile(`goroutine \d+`)
	reNumber       = regexp.MustCompile(`\b\d+\b`)
	reQuoted       = regexp.MustCompile(`"[^"]*"`)
	reSpaces       = regexp.MustCompile(`\s+`)
)

// NormalizeFrame reduces one printed stack frame to what stays the same
// from one crash of the same bug to the next: the function name, or, for a
// frame without symbols, the module and its module-relative offset. It
// strips frame indexes, absolute addresses, function offsets, argument
// values, file names with line numbers and goroutine IDs. It returns "" for
// lines that carry no frame (a Go trace's file:line lines, elision notes).
//
// Understood shapes, among others:
//
//	main.(*Server).handle(0xc000010000, {0x0, 0x0})   Go trace
//	#3  0x00007f1c2a3b4c5d in sensor_read (fd=3) at src/sensor.c:42   gdb
//	/usr/bin/sensord(sensor_read+0x1a) [0x55d0c0ffee00]   backtrace_symbols
//	/usr/bin/sensord(+0x1234) [0x55d0c0ffee00]   the same without symbols
//	#0  0x00007f3c8a2e5e2c raise (libc.so.6 + 0x3e7c)   systemd-coredump
//	#2  0x000055d0c0ffee00 n/a (sensord + 0x1234)   the same without symbols
//	libc.so.6!abort+0x1a
func NormalizeFrame(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "...") || strings.HasPrefix(s, "created by ") {
		return ""
	}
	s = reFrameIndex.ReplaceAllString(s, "")
	s = reGDBAddrIn.ReplaceAllString(s, "")
	// systemd-coredump: "func (module + 0xoff)", "n/a (module + 0xoff)".
	if m := reCoredumpSym.FindStringSubmatch(s); m != nil {
		if m[1] == "n/a" || m[1] == "??" {
			return path.Base(m[2]) + "+" + strings.ToLower(m[3])
		}
		return m[1]
	}
	// backtrace_symbols: a symbol always comes with an offset; "f(int)"
	// without one is a C++ signature, not a module and symbol.
	if m := reBacktraceSym.FindStringSubmatch(s); m != nil && (m[2] == "" || m[3] != "") {
		module := path.Base(m[1])
		if m[2] != "" {
			return m[2]
		}
		if m[3] != "" {
			return module + strings.ToLower(m[3])
		}
		return module
	}
	// A Go trace's file line, or a bare file:line.
	if strings.HasPrefix(s, "/") && reLineNumber.MatchString(strings.Fields(s)[0]) {
		return ""
	}
	if i := strings.Index(s, " at "); i > 0 {
		s = s[:i]
	}
	if i := strings.Index(s, " from "); i > 0 {
		s = s[:i]
	}
	s = reTrailAddr.ReplaceAllString(s, "")
	s = stripArgs(strings.TrimSpace(s))
	s = reOffset.ReplaceAllString(s, "")
	s = reLineNumber.ReplaceAllString(s, "")
	if i := strings.LastIndex(s, "!"); i > 0 {
		s = path.Base(s[:i]) + s[i:]
	}
	s = reGoroutine.ReplaceAllString(s, "goroutine N")
	s = reHex.ReplaceAllString(s, "0x?")
	s = reSpaces.ReplaceAllString(strings.TrimSpace(s), " ")
	if s == "0x?" || s == "??" {
		return "?"
	}
	return s
}

// stripArgs removes a trailing parenthesised argument list when it holds
// values (Go's hex words, gdb's name=value pairs, "...") rather than the
// parameter types of a C++ signature, which tell overloads apart.
func stripArgs(s string) string {
	if !strings.HasSuffix(s, ")") {
		return s
	}
	depth := 0
	for i := len(s) - 1; i >= 0; i-- {
		switch s[i] {
		case ')':
			depth++
		case '(':
			depth--
			if depth == 0 {
				args := s[i+1 : len(s)-1]
				if i == 0 {
					return s
				}
				if args == "" || strings.ContainsAny(args, "{=?") || strings.Contains(args, "0x") || strings.Contains(args, "...") {
					return strings.TrimSpace(s[:i])
				}
				return s
			}
		}
	}
	return s
}

// noiseFrames are frames of the panic or abort machinery itself; they sit
// on top of every crash of their kind and would make unrelated bugs share
// a signature.
var noiseFrames = map[string]bool{
	"panic": true, "runtime.gopanic": true, "runtime.sigpanic": true, "runtime.panicmem": true,
	"runtime.panicmemAddr": true, "runtime.throw": true, "runtime.fatalthrow": true, "runtime.fatalpanic": true,
	"runtime.panicdivide": true, "runtime.panicshift": true, "runtime.panicdottypeE": true, "runtime.panicdottypeI": true,
	"runtime.panicnildottype": true, "runtime.panicunsafeslicelen": true,
	"raise": true, "abort": true, "gsignal": true, "__GI_raise": true, "__GI_abort": true, "pthread_kill": true,
	"__pthread_kill_implementation": true, "__pthread_kill_internal": true, "__pthread_kill": true,
	"__libc_message": true, "__assert_fail_base": true, "__assert_fail": true, "__fortify_fail": true,
	"__stack_chk_fail": true, "__chk_fail": true, "__libc_fatal": true, "malloc_printerr": true,
}

func isNoise(f string) bool {
	if noiseFrames[f] {
		return true
	}
	if i := strings.LastIndex(f, "!"); i >= 0 && noiseFrames[f[i+1:]] {
		return true
	}
	return strings.HasPrefix(f, "runtime.goPanic") || strings.HasPrefix(f, "runtime.panicIndex") ||
		strings.HasPrefix(f, "runtime.panicSlice")
}

// NormalizeFrames normalises frames, drops lines that carry none, and drops
// the panic and abort machinery at the top of the stack.
func NormalizeFrames(frames []string) []string {
	out := make([]string, 0, len(frames))
	for _, f := range frames {
		if n := NormalizeFrame(f); n != "" {
			if len(out) == 0 && isNoise(n) {
				continue
			}
			out = append(out, n)
		}
	}
	return out
}

// NormalizeMessage reduces a fault message (a Go panic's text) to its shape:
// numbers, hex words and quoted strings are replaced, spaces collapsed, and
// the result is cut at 200 bytes, so that "index out of range [5] with length
// 3" and "[7] with length 2" group together.
func NormalizeMessage(s string) string {
	s = reQuoted.ReplaceAllString(s, `"…"`)
	s = reHex.ReplaceAllString(s, "0x?")
	s = reNumber.ReplaceAllString(s, "N")
	s = reSpaces.ReplaceAllString(strings.TrimSpace(s), " ")
	if len(s) > 200 {
		s = strings.ToValidUTF8(s[:200], "")
	}
	return s
}
