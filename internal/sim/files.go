package sim

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rampartsec/rampart/internal/agent/update"
)

// cutFS is the updater's file system with a power switch: once armed with n, the nth file
// operation and every one after it fail with ErrPowerCut, as if the machine stopped there. What
// was written before stays on disk; the device then restarts from it (sim.restart).
type cutFS struct {
	update.FS

	mu    sync.Mutex
	left  int // operations left before the cut; 0 when not armed
	armed bool
	cut   bool
}

func (c *cutFS) arm(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.left, c.armed, c.cut = n, true, false
}

// disarm restores power and reports whether the cut struck.
func (c *cutFS) disarm() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	cut := c.cut
	c.left, c.armed, c.cut = 0, false, false
	return cut
}

// op counts one operation and reports whether power is gone.
func (c *cutFS) op() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.armed {
		return nil
	}
	if c.cut {
		return ErrPowerCut
	}
	c.left--
	if c.left <= 0 {
		c.cut = true
		return ErrPowerCut
	}
	return nil
}

func (c *cutFS) OpenFile(name string, flag int, perm os.FileMode) (update.File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC|os.O_APPEND) != 0 {
		if err := c.op(); err != nil {
			return nil, err
		}
	}
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &cutFile{File: f, fs: c}, nil
}

func (c *cutFS) Rename(oldpath, newpath string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.Rename(oldpath, newpath)
}

func (c *cutFS) Remove(name string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.Remove(name)
}

func (c *cutFS) MkdirAll(path string, perm os.FileMode) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.MkdirAll(path, perm)
}

func (c *cutFS) SyncDir(path string) error {
	if err := c.op(); err != nil {
		return err
	}
	return c.FS.SyncDir(path)
}

// cutFile counts writes, syncs and truncations of an open file.
type cutFile struct {
	update.File
	fs *cutFS
}

func (f *cutFile) Write(p []byte) (int, error) {
	if err := f.fs.op(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *cutFile) Sync() error {
	if err := f.fs.op(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *cutFile) Truncate(size int64) error {
	if err := f.fs.op(); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

// crashFile is the application crash format of doc/failures.md.
type crashFile struct {
	Program   string   `json:"program"`
	Component string   `json:"component"`
	Version   string   `json:"version"`
	Signal    int      `json:"signal"`
	FaultType string   `json:"fault_type"`
	Frames    []string `json:"frames"`
	Time      string   `json:"time"`
}

// crashKinds are the simulated application's bugs: each one is a distinct crash signature.
var crashKinds = [][]string{
	{"sensor_read+0x1a", "poll_loop+0x40", "main+0x10"},
	{"parse_frame+0x88", "handle_packet+0x21", "net_loop+0x5c", "main+0x10"},
	{"cache_evict+0x12", "cache_put+0x3f", "worker+0x77"},
}

// writeCrash drops one crash file into the spool the way doc/failures.md says an application
// does: written under a dot name, then renamed.
func writeCrash(spool string, rng *rand.Rand, release string, now time.Time) error {
	if release == "" {
		release = "unknown"
	}
	c := crashFile{Program: "/usr/bin/simd", Component: "rootfs", Version: release, Signal: 11, FaultType: "SIGSEGV",
		Frames: crashKinds[rng.IntN(len(crashKinds))], Time: now.UTC().Format(time.RFC3339Nano)}
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(spool, 0o750); err != nil {
		return err
	}
	name := fmt.Sprintf("%d-%d.json", now.UnixNano(), rng.Uint32())
	tmp := filepath.Join(spool, "."+name)
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(spool, name))
}

// readBoot and writeBoot keep the number of simulated power cuts, so a restarted simulator
// boots each device anew.
func readBoot(dir string) int {
	b, err := os.ReadFile(filepath.Join(dir, "sim-boot"))
	if err != nil {
		return 0
	}
	n, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return n
}

func writeBoot(dir string, n int) error {
	return os.WriteFile(filepath.Join(dir, "sim-boot"), []byte(strconv.Itoa(n)+"\n"), 0o600)
}
