// Command loadgen drives a device endpoint from many mutual-TLS keep-alive connections, one
// device certificate per connection, for a fixed time, and prints one JSON line: requests,
// errors, requests per second and latency percentiles. It runs in its own process so that the
// server under test and the load do not share a Go runtime.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/certpool"
)

type result struct {
	Target   string  `json:"target"`
	Proto    string  `json:"proto"`
	Conns    int     `json:"connections"`
	Requests int     `json:"requests"`
	Errors   int     `json:"errors"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	FirstErr string  `json:"first_error,omitempty"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func run() error {
	url := flag.String("url", "", "endpoint to call, e.g. https://127.0.0.1:8443/device/v1/whoami")
	caFile := flag.String("ca-file", "", "CA of the server certificate")
	certDir := flag.String("certs", "", "folder of device-*.pem files (certificate and key)")
	conns := flag.Int("conns", 64, "concurrent keep-alive connections, one device each")
	duration := flag.Duration("duration", 10*time.Second, "how long to send")
	warmup := flag.Duration("warmup", 2*time.Second, "time to send before measuring")
	hold := flag.Int("hold", 0, "instead of load: open this many connections, each with one request held open for --duration (memory ceiling)")
	holdCert := flag.Bool("hold-client-cert", false, "with --hold: present a client certificate on every connection, as devices on the long-poll do: those in --certs, else self-signed ECDSA P-256 ones")
	h2 := flag.Bool("http2", false, "speak HTTP/2 where the server offers it; false: HTTP/1.1, as the agent speaks (identity.NewTransport)")
	holdResume := flag.Bool("hold-resume", false, "with --hold: hold each request on a connection that resumed a TLS session (a first connection gets the ticket: GET URL?ticket, which the ceiling answers at once), as most devices' long-polls do")
	holdSources := flag.Int("hold-sources", 1, "with --hold on a loopback URL: spread the connections over this many source addresses (127.0.0.1, 127.0.0.2, ...), as the ephemeral ports of one address run out near 28,000")
	flag.Parse()
	if *hold > 0 {
		return holdOpen(*url, *caFile, *hold, *duration, holdOptions{clientCert: *holdCert, certDir: *certDir, http2: *h2, resume: *holdResume, sources: *holdSources})
	}
	if *url == "" || *caFile == "" || *certDir == "" {
		return errors.New("--url, --ca-file and --certs are required")
	}
	roots, err := certpool.FromFile(*caFile)
	if errors.Is(err, certpool.ErrNoCertificate) {
		return errors.New("no certificate in --ca-file")
	}
	if err != nil {
		return err
	}
	files, _ := filepath.Glob(filepath.Join(*certDir, "device-*.pem"))
	if len(files) < *conns {
		return fmt.Errorf("%d certificates in %s for %d connections", len(files), *certDir, *conns)
	}
	clients := make([]*http.Client, *conns)
	for i := range clients {
		pemBytes, err := os.ReadFile(files[i])
		if err != nil {
			return err
		}
		cert, err := tls.X509KeyPair(pemBytes, pemBytes)
		if err != nil {
			return fmt.Errorf("%s: %w", files[i], err)
		}
		clients[i] = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}},
			MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1, ForceAttemptHTTP2: *h2,
		}}
	}
	ctx, cancel := context.WithTimeout(context.Background(), *warmup+*duration)
	defer cancel()
	measureFrom := time.Now().Add(*warmup)
	var mu sync.Mutex
	var lat []time.Duration
	var res result
	var wg sync.WaitGroup
	// The protocol the connections speak, from the first answer.
	if res.Proto, err = protocol(ctx, clients[0], *url); err != nil {
		return err
	}
	for _, c := range clients {
		wg.Go(func() {
			var local []time.Duration
			errs := 0
			var firstErr string
			for ctx.Err() == nil {
				t0 := time.Now()
				err := call(ctx, c, *url)
				if ctx.Err() != nil {
					break
				}
				if t0.Before(measureFrom) {
					continue
				}
				if err != nil {
					errs++
					if firstErr == "" {
						firstErr = err.Error()
					}
					continue
				}
				local = append(local, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, local...)
			res.Errors += errs
			if res.FirstErr == "" {
				res.FirstErr = firstErr
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	slices.Sort(lat)
	res.Target, res.Conns, res.Requests, res.Seconds = *url, *conns, len(lat), duration.Seconds()
	res.RPS = float64(len(lat)) / duration.Seconds()
	if len(lat) > 0 {
		res.P50ms = float64(lat[len(lat)/2]) / 1e6
		res.P99ms = float64(lat[len(lat)*99/100]) / 1e6
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}

// protocol makes one call and returns the protocol of its answer ("HTTP/1.1", "HTTP/2.0").
func protocol(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.Proto, nil
}

func call(ctx context.Context, c *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode != 200 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

type holdOptions struct {
	clientCert bool   // a certificate of its own on every connection
	certDir    string // with clientCert: device certificates to present (device-*.pem), else self-signed ones
	http2      bool   // HTTP/2 instead of HTTP/1.1
	resume     bool   // the held connection resumes a TLS session
	sources    int    // loopback source addresses to spread the connections over
}

// holdOpen opens n TLS connections, each with one GET in flight, and keeps them for d: what a
// fleet waiting on the long-poll costs a bare server. With clientCert every connection presents
// a self-signed certificate of its own, as every device presents its own (crypto/tls shares the
// parsed form of identical certificates between connections, so one for all would cost less).
func holdOpen(url, caFile string, n int, d time.Duration, o holdOptions) error {
	roots, err := certpool.FromFile(caFile)
	if err != nil {
		return err
	}

	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	var files []string
	if o.clientCert && o.certDir != "" {
		files, _ = filepath.Glob(filepath.Join(o.certDir, "device-*.pem"))
		if len(files) < n {
			return fmt.Errorf("%d certificates in %s for %d connections", len(files), o.certDir, n)
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // handshakes at once
	for i := range n {
		sem <- struct{}{}
		var certs []tls.Certificate
		if o.clientCert {
			var c tls.Certificate
			if files != nil {
				pemBytes, err := os.ReadFile(files[i])
				if err != nil {
					return err
				}
				if c, err = tls.X509KeyPair(pemBytes, pemBytes); err != nil {
					return fmt.Errorf("%s: %w", files[i], err)
				}
			} else if c, err = selfSigned(); err != nil {
				return err
			}
			certs = []tls.Certificate{c}
		}
		wg.Go(func() {
			dialer := &net.Dialer{}
			if o.sources > 1 {
				dialer.LocalAddr = &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%o.sources))}
			}
			tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: certs}, MaxConnsPerHost: 1,
				DialContext: dialer.DialContext, ForceAttemptHTTP2: o.http2}
			c := &http.Client{Transport: tr}
			if o.resume {
				tr.TLSClientConfig.ClientSessionCache = tls.NewLRUClientSessionCache(1)
				if resp, err := c.Get(url + "?ticket"); err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				tr.CloseIdleConnections()
			}
			req, _ := http.NewRequestWithContext(ctx, "GET", url, nil)
			go func() { time.Sleep(50 * time.Millisecond); <-sem }()
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		})
	}
	wg.Wait()
	return nil
}

// selfSigned makes a client certificate like a device's: an ECDSA P-256 key, a year's validity.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "loadgen device"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
