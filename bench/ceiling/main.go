// Command ceiling is the bare net/http TLS server the device benchmarks compare against: the same
// TLS certificate, client certificates requested the same way, and a fixed JSON answer of the
// size a device endpoint returns, with no authentication, storage or logic.
package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:9443", "address")
	cert := flag.String("tls-cert", "", "server certificate")
	key := flag.String("tls-key", "", "server key")
	size := flag.Int("size", 200, "answer size in bytes")
	hold := flag.Bool("hold", false, "hold every request until the client goes away, as the long-poll does (memory ceiling)")
	heapProfile := flag.String("heap-profile", "", "on SIGTERM, after the garbage collections, write a heap profile to FILE (as rampart server --heap-profile)")
	flag.Parse()
	if *heapProfile != "" {
		runtime.MemProfileRate = 4096 // as rampart server --heap-profile
	}
	body := []byte(`{"pad":"` + strings.Repeat("x", max(*size-10, 0)) + `"}`)
	kp, err := tls.LoadX509KeyPair(*cert, *key)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
	srv := &http.Server{
		Addr:              *listen,
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{kp}, ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12},
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if *hold && r.URL.RawQuery != "ticket" { // ?ticket: a first connection, for a session to resume
				<-r.Context().Done()
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Write(body)
		}),
	}
	// SIGTERM prints the memory figures `rampart server --heap-profile` prints, for the memory
	// benchmark's breakdown, then exits.
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM)
	go func() {
		<-stop
		for range 3 { // as rampart server --heap-profile does: stacks shrink by half per collection
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(os.Stderr, "memory at stop: goroutines %d, heap in use %d B, stacks in use %d B, heap objects %d, OS memory %d B, heap live %d B\n",
			runtime.NumGoroutine(), m.HeapInuse, m.StackInuse, m.HeapObjects, m.Sys, m.HeapAlloc)
		if *heapProfile != "" {
			if f, err := os.Create(*heapProfile); err == nil {
				pprof.WriteHeapProfile(f)
				f.Close()
			}
		}
		os.Exit(0)
	}()
	fmt.Fprintln(os.Stderr, "ceiling listening on", *listen)
	if err := srv.ListenAndServeTLS("", ""); err != nil {
		fmt.Fprintln(os.Stderr, "ceiling:", err)
		os.Exit(1)
	}
}
