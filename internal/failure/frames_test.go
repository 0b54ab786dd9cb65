package failure

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestNormalizeFrame(t *testing.T) {
	tests := []struct{ in, want string }{
		{"main.(*Server).handle(0xc000010000, {0x0, 0x0})", "main.(*Server).handle"},
		{"main.main()", "main.main"},
		{"main.(*Server).handle(...)", "main.(*Server).handle"},
		{"panic({0x4a2b40?, 0x5c4e10?})", "panic"},
		{"example.com/x/pkg.Map[...].Get(0xc0000b2000, {0x4c1d2e, 0x5})", "example.com/x/pkg.Map[...].Get"},
		{"\t/build/server.go:42 +0x1d", ""},
		{"/build/server.go:42", ""},
		{"...additional frames elided...", ""},
		{"created by main.main in goroutine 1", ""},
		{"#3  0x00007f1c2a3b4c5d in sensor_read (fd=3, buf=0x0) at src/sensor.c:42", "sensor_read"},
		{"#1  0x000055d0c0ffee00 in poll_loop () at src/main.c:88", "poll_loop"},
		{"#2  0x00007f1c2a229d90 in __libc_start_call_main () from /lib/x86_64-linux-gnu/libc.so.6", "__libc_start_call_main"},
		{"#0  sensor_read (fd=3) at src/sensor.c:42", "sensor_read"},
		{"/usr/bin/sensord(sensor_read+0x1a) [0x55d0c0ffee00]", "sensor_read"},
		{"/usr/bin/sensord(+0x1234) [0x55d0c0ffee00]", "sensord+0x1234"},
		{"/usr/bin/sensord(+0x1A2B)", "sensord+0x1a2b"},
		{"/usr/bin/sensord() [0x55d0c0ffee00]", "sensord"},
		{"/lib/x86_64-linux-gnu/libc.so.6!abort+0x1a", "libc.so.6!abort"},
		{"foo+0x1a", "foo"},
		{"#0  0x00007f3c8a2e5e2c __pthread_kill_implementation (libc.so.6 + 0x8ee2c)", "__pthread_kill_implementation"},
		{"#2  0x000055d0c0ffee00 n/a (/usr/bin/sensord + 0x1A34)", "sensord+0x1a34"},
		{"#3  0x000055d0c0ffee00 sensor_read (sensord + 0x1234)", "sensor_read"},
		{"ns::Parser::parse(std::string const&)", "ns::Parser::parse(std::string const&)"},
		{"ns::Parser::parse(int)", "ns::Parser::parse(int)"},
		{"ns::Parser::parse(int)+0x1c", "ns::Parser::parse(int)"},
		{"ns::Parser::parse(int) at parser.cc:17", "ns::Parser::parse(int)"},
		{"handler in goroutine 42", "handler in goroutine N"},
		{"0x00007f1c2a3b4c5d", "?"},
		{"#7  0x00007f1c2a3b4c5d in ?? ()", "?"},
		{"worker.c:120", "worker.c"},
		{"  spaced   out  ", "spaced out"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := NormalizeFrame(tt.in); got != tt.want {
			t.Errorf("NormalizeFrame(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNormalizeFramesDropsMachinery(t *testing.T) {
	got := NormalizeFrames([]string{
		"panic({0x4a2b40?, 0x5c4e10?})",
		"\t/usr/lib/go/src/runtime/panic.go:770 +0x132",
		"runtime.goPanicIndex(0x5, 0x3)",
		"main.(*Router).route(0xc0000a6000)",
		"\t/build/router.go:42 +0x1d4",
		"panic(0x1)", // machinery below app code stays: it is part of the story
		"main.main()",
	})
	want := []string{"main.(*Router).route", "panic", "main.main"}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("NormalizeFrames (-got +want):\n%s", diff)
	}
	got = NormalizeFrames([]string{"raise", "libc.so.6!abort+0x10", "__assert_fail", "at_parse", "main"})
	if diff := cmp.Diff(got, []string{"at_parse", "main"}); diff != "" {
		t.Errorf("NormalizeFrames C (-got +want):\n%s", diff)
	}
}

func TestNormalizeMessage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"runtime error: index out of range [5] with length 3", "runtime error: index out of range [N] with length N"},
		{"runtime error: invalid memory address or nil pointer dereference", "runtime error: invalid memory address or nil pointer dereference"},
		{`user "bob" not found at 0xc000123456`, `user "…" not found at 0x?`},
	}
	for _, tt := range tests {
		if got := NormalizeMessage(tt.in); got != tt.want {
			t.Errorf("NormalizeMessage(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestParseGoPanic(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want GoPanic
	}{
		{
			name: "nil dereference",
			in: `panic: runtime error: invalid memory address or nil pointer dereference
[signal SIGSEGV: segmentation violation code=0x1 addr=0x0 pc=0x4a1b2c]

goroutine 1 [running]:
main.(*Server).handle(0x0, {0x0, 0x0})
	/build/server.go:42 +0x1d
main.main()
	/build/main.go:10 +0x25
exit status 2
`,
			want: GoPanic{Message: "runtime error: invalid memory address or nil pointer dereference", Signal: "SIGSEGV",
				Frames: []string{"main.(*Server).handle(0x0, {0x0, 0x0})", "main.main()"}},
		},
		{
			name: "recovered and repanicked, second goroutine ignored",
			in:   "panic: first [recovered]\n\tpanic: second\n\ngoroutine 7 [running]:\r\npanic({0x1, 0x2})\r\n\t/go/src/runtime/panic.go:770 +0x132\r\nmain.worker()\r\n\t/w.go:5 +0x1\r\n\r\ngoroutine 1 [chan receive]:\r\nmain.main()\r\n",
			want: GoPanic{Message: "first", Frames: []string{"panic({0x1, 0x2})", "main.worker()"}},
		},
		{
			name: "fatal error with created by",
			in:   "fatal error: concurrent map writes\n\ngoroutine 9 [running]:\nmain.(*Cache).Put(0xc000012345)\n\t/src/cache.go:30 +0x65\ncreated by main.main in goroutine 1\n\t/src/main.go:12 +0x3b\n",
			want: GoPanic{Message: "concurrent map writes", Fatal: true, Frames: []string{"main.(*Cache).Put(0xc000012345)"}},
		},
		{
			name: "no goroutine dump",
			in:   "panic: boom\n",
			want: GoPanic{Message: "boom"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseGoPanic(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(got, tt.want); diff != "" {
				t.Errorf("ParseGoPanic (-got +want):\n%s", diff)
			}
		})
	}
	if _, err := ParseGoPanic("segmentation fault (core dumped)"); err == nil {
		t.Error("ParseGoPanic accepted text without a panic line")
	}
}
