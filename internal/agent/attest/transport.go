package attest

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"time"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"

	"github.com/rampartsec/rampart/internal/deviceapi"
)

// commandChannel adapts a go-tpm transport to the io.ReadWriteCloser that
// go-attestation and go-tpm's legacy API expect. go-tpm's own
// transport.ToReadWriter returns (n, io.EOF) on the read that drains a
// response, which tpmutil treats as a failed command; this adapter returns
// the whole response in one read with a nil error.
type commandChannel struct {
	tpm  transport.TPMCloser
	resp []byte
}

func (c *commandChannel) Write(cmd []byte) (int, error) {
	resp, err := c.tpm.Send(cmd)
	if err != nil {
		return 0, err
	}
	c.resp = resp
	return len(cmd), nil
}

func (c *commandChannel) Read(p []byte) (int, error) {
	if len(c.resp) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.resp)
	c.resp = c.resp[n:]
	return n, nil
}

func (c *commandChannel) Close() error { return c.tpm.Close() }

// MeasurementLog implements go-attestation's CommandChannelTPM20. Rampart
// keeps its own measurement log, so the firmware log is only returned where
// the kernel exposes it.
func (c *commandChannel) MeasurementLog() ([]byte, error) {
	return os.ReadFile("/sys/kernel/security/tpm0/binary_bios_measurements")
}

func openDeviceTPM(_ context.Context, path string, cfg Config) (Attester, error) {
	t, err := linuxtpm.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return NewTPM(deviceapi.KindTPM, t, cfg.StateDir, cfg.Logger)
}

func openSWTPM(ctx context.Context, addr string, cfg Config) (Attester, error) {
	t, err := DialSWTPM(ctx, addr)
	if err != nil {
		return nil, err
	}
	return NewTPM(deviceapi.KindSWTPM, t, cfg.StateDir, cfg.Logger)
}

// swtpm's raw TCP protocol: each command is written as is, each response
// starts with a 10-byte header whose second field is the total size.
const (
	tpmHeaderSize   = 10
	maxTPMResponse  = 64 << 10
	swtpmIOTimeout  = 30 * time.Second
	swtpmDialTimout = 5 * time.Second
)

// ErrTransport wraps failures of the swtpm TCP transport.
var ErrTransport = errors.New("tpm transport")

// SWTPM is a transport.TPMCloser speaking swtpm's raw TPM protocol over
// TCP (swtpm socket --server type=tcp,port=P).
type SWTPM struct {
	conn net.Conn
}

// DialSWTPM connects to swtpm at HOST:PORT.
func DialSWTPM(ctx context.Context, addr string) (*SWTPM, error) {
	if _, _, err := net.SplitHostPort(addr); err != nil {
		return nil, fmt.Errorf("swtpm address %q: want HOST:PORT: %w", addr, err)
	}
	d := net.Dialer{Timeout: swtpmDialTimout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial swtpm: %w", err)
	}
	return &SWTPM{conn: conn}, nil
}

// Send implements transport.TPM: one command, one complete response.
func (s *SWTPM) Send(cmd []byte) ([]byte, error) {
	if err := s.conn.SetDeadline(time.Now().Add(swtpmIOTimeout)); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	if _, err := s.conn.Write(cmd); err != nil {
		return nil, fmt.Errorf("%w: send: %w", ErrTransport, err)
	}
	hdr := make([]byte, tpmHeaderSize)
	if _, err := io.ReadFull(s.conn, hdr); err != nil {
		return nil, fmt.Errorf("%w: read response header: %w", ErrTransport, err)
	}
	size := binary.BigEndian.Uint32(hdr[2:6])
	if size < tpmHeaderSize || size > maxTPMResponse {
		return nil, fmt.Errorf("%w: response size %d out of range", ErrTransport, size)
	}
	resp := make([]byte, size)
	copy(resp, hdr)
	if _, err := io.ReadFull(s.conn, resp[tpmHeaderSize:]); err != nil {
		return nil, fmt.Errorf("%w: read response: %w", ErrTransport, err)
	}
	return resp, nil
}

// Close implements io.Closer.
func (s *SWTPM) Close() error { return s.conn.Close() }
