package testenv

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// Proxy is a loopback TCP proxy to a server that can cut every connection and refuse new ones
// for a while: the server going away (a restart, a crash, a network partition) as its clients
// see it, without stopping the server.
type Proxy struct {
	ln      net.Listener
	target  string
	down    atomic.Bool
	refused atomic.Int64
	opened  atomic.Int64
	mu      sync.Mutex
	conns   []net.Conn
	// shape, when set, carries the server's bytes to the client (StartShapingProxy).
	shape func(dst, src net.Conn)
}

// StartProxy listens on a loopback port and forwards each connection to target (host:port),
// until the test ends.
func StartProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	return StartShapingProxy(t, target, nil)
}

// StartShapingProxy is StartProxy whose server-to-client bytes go through shape, which copies
// from src to dst as it likes (slowly, or not at all: a server or an attacker on the path) and
// returns when either side fails; nil copies them as they come.
func StartShapingProxy(t testing.TB, target string, shape func(dst, src net.Conn)) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{ln: ln, target: target, shape: shape}
	go p.accept()
	t.Cleanup(func() { ln.Close(); p.Cut() })
	return p
}

// Addr is the proxy's address, host:port.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Down cuts every open connection and refuses new ones until Up.
func (p *Proxy) Down() {
	p.down.Store(true)
	p.Cut()
}

// Up forwards new connections again.
func (p *Proxy) Up() { p.down.Store(false) }

// Refused counts the connections refused while the proxy was down.
func (p *Proxy) Refused() int64 { return p.refused.Load() }

// Opened counts the connections forwarded to the server: each, through a TLS server, one
// handshake.
func (p *Proxy) Opened() int64 { return p.opened.Load() }

// Cut closes every open connection.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			p.refused.Add(1)
			c.Close()
			continue
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.opened.Add(1)
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go func() { io.Copy(s, c); s.Close() }()
		go func() {
			if p.shape != nil {
				p.shape(c, s)
			} else {
				io.Copy(c, s)
			}
			c.Close()
		}()
	}
}
