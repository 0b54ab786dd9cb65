package main

import (
	"bytes"
	"context"
	"net"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/cli"
	"github.com/rampartsec/rampart/internal/cli/clitest"
)

// silentProxy forwards bytes both ways until silenced; from then on, on each new connection, it
// lets the TLS handshake through (the server's bytes until the device's second flight, its
// Finished) and swallows everything the server sends after: an attacker on the path who lets
// the device connect and then holds its request open, the device's side never closed.
type silentProxy struct {
	ln     net.Listener
	mu     sync.Mutex
	silent bool
	conns  []net.Conn
}

func startSilentProxy(t *testing.T, target string) *silentProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &silentProxy{ln: ln}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, s)
			silent := p.silent
			p.mu.Unlock()
			var flights atomic.Int32 // the device's writes seen
			wg.Add(2)
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := c.Read(buf)
					if n > 0 {
						flights.Add(1)
						if _, werr := s.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						s.Close()
						return
					}
				}
			}()
			go func() {
				defer wg.Done()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 && (!silent || flights.Load() < 2) {
						if _, werr := c.Write(buf[:n]); werr != nil {
							return
						}
					}
					if err != nil {
						if !silent {
							c.Close()
						}
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		wg.Wait()
	})
	return p
}

func (p *silentProxy) silence() {
	p.mu.Lock()
	p.silent = true
	p.mu.Unlock()
}

// TestRunOnceNotHeld runs the real `rampart-agent run --once` against a real server behind a
// proxy that swallows the server's answers. The check-in ends by itself, exits 1 and says the
// server did not answer within the deadline. Before every device-API call had a deadline, the
// director probe waited for ever and the process never exited.
func TestRunOnceNotHeld(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the agent and waits out its 30 s deadline")
	}
	bin := buildAgent(t)
	f := clitest.StartFleet(t, cli.Root)
	u, err := url.Parse(f.URL)
	if err != nil {
		t.Fatal(err)
	}
	p := startSilentProxy(t, u.Host)
	a := &realAgent{bin: bin, server: "https://" + p.ln.Addr().String(), caFile: f.CAFile, state: t.TempDir()}
	a.id = strings.TrimSpace(a.run(t, "enroll"))
	if _, err := f.API.ClaimDevice(context.Background(), a.id, client.ClaimDeviceRequest{Product: "lamp", Group: "Production"}); err != nil {
		t.Fatal(err)
	}
	// The first check-in attests and pins the update roots; no release is named yet.
	a.run(t, "run", "--once")

	p.silence()
	// A bound for the test only (no timing assertion): the process must end by itself, long
	// before this.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	var out bytes.Buffer
	cmd := exec.CommandContext(ctx, a.bin, a.args("run", "--once")...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("rampart-agent run --once was held until the test gave up:\n%s", out.String())
	}
	exit, ok := err.(*exec.ExitError)
	if !ok || exit.ExitCode() != 1 || !strings.Contains(out.String(), " did not answer within 30s; check --server and the network") {
		t.Fatalf("rampart-agent run --once through a silent path: %v\n%s\nwant exit 1 naming the deadline", err, out.String())
	}
	t.Logf("%s", strings.TrimSpace(out.String()))
}
