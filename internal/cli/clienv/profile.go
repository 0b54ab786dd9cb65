package clienv

import (
	"context"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
)

// StartCPUProfile writes a CPU profile to path (the --cpu-profile flag of the long-running
// verbs) until the returned stop is called; an empty path profiles nothing.
func StartCPUProfile(path string) (stop func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpu-profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

// HeapProfileAtStop writes, once ctx ends, a heap profile to path (after garbage collections,
// so that it counts what is live) and a line of the runtime's memory figures to w: the
// --heap-profile flag of `rampart server`, for the memory benchmark, which stops the server
// while its devices still hold the long-poll. An empty path writes nothing. The returned wait
// blocks, once ctx has ended, until the profile is written.
func HeapProfileAtStop(ctx context.Context, path string, w io.Writer) (wait func(), err error) {
	if path == "" {
		return func() {}, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--heap-profile: %w", err)
	}
	// One sample every 4 KiB allocated instead of 512: each connection's few-KiB buffers are
	// then counted closely enough to compare two profiles connection by connection.
	runtime.MemProfileRate = 4096
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer f.Close()
		<-ctx.Done()
		// Three collections: goroutine stacks shrink by half at most per collection, as they
		// would over the minutes of a long-poll (the runtime collects at least every 2 minutes).
		for range 3 {
			runtime.GC()
		}
		var m runtime.MemStats
		runtime.ReadMemStats(&m)
		fmt.Fprintf(w, "memory at stop: goroutines %d, heap in use %d B, stacks in use %d B, heap objects %d, OS memory %d B, heap live %d B (%s)\n",
			runtime.NumGoroutine(), m.HeapInuse, m.StackInuse, m.HeapObjects, m.Sys, m.HeapAlloc, path)
		if err := pprof.WriteHeapProfile(f); err != nil {
			fmt.Fprintf(w, "--heap-profile: %v\n", err)
		}
	}()
	return func() {
		if ctx.Err() != nil {
			<-done
		}
	}, nil
}
