package update

import (
	"errors"
	"os"
	"path/filepath"
)

var errPowerCut = errors.New("power cut")

// crashFS is the real filesystem with a power switch: the cutAt-th
// mutating call (write, sync, rename, remove, truncate, create, mkdir,
// directory sync) fails, every later call fails too, and what a real disk
// could lose is undone: file data written since the file's last fsync, files
// created and renames done since their directory's last fsync. (Removals
// are treated as durable at once; the updater only removes files it no
// longer trusts.)
type crashFS struct {
	OSFS
	cutAt   int
	ops     int
	dead    bool
	synced  map[string]int64 // path -> size known durable
	pending []pendingEntry   // directory changes not yet fsynced
}

type pendingEntry struct {
	dir     string
	created string // path created
	oldpath string // rename source
	newpath string // rename target
	prev    []byte // previous content of newpath
	hadPrev bool
}

func newCrashFS(cutAt int) *crashFS {
	return &crashFS{cutAt: cutAt, synced: map[string]int64{}}
}

func (c *crashFS) op() error {
	if c.dead {
		return errPowerCut
	}
	c.ops++
	if c.ops == c.cutAt {
		c.dead = true
		c.crash()
		return errPowerCut
	}
	return nil
}

// crash undoes what was not durable: unsynced file data first (at the
// files' current names), then directory changes, newest first.
func (c *crashFS) crash() {
	for path, size := range c.synced {
		if st, err := os.Stat(path); err == nil && st.Size() > size {
			os.Truncate(path, size)
		}
	}
	for i := len(c.pending) - 1; i >= 0; i-- {
		p := c.pending[i]
		switch {
		case p.created != "":
			os.Remove(p.created)
		case p.newpath != "":
			os.Rename(p.newpath, p.oldpath)
			if p.hadPrev {
				os.WriteFile(p.newpath, p.prev, 0o600)
			}
		}
	}
}

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_CREATE|os.O_TRUNC) == 0 {
		if c.dead {
			return nil, errPowerCut
		}
		return os.OpenFile(name, flag, perm)
	}
	if err := c.op(); err != nil {
		return nil, err
	}
	_, statErr := os.Stat(name)
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if os.IsNotExist(statErr) {
		c.pending = append(c.pending, pendingEntry{dir: filepath.Dir(name), created: name})
		c.synced[name] = 0
	} else if _, ok := c.synced[name]; !ok {
		st, _ := f.Stat()
		c.synced[name] = st.Size()
	}
	if flag&os.O_TRUNC != 0 {
		c.synced[name] = 0
	}
	return &crashFile{File: f, fs: c}, nil
}

func (c *crashFS) Rename(oldpath, newpath string) error {
	if err := c.op(); err != nil {
		return err
	}
	prev, err := os.ReadFile(newpath)
	e := pendingEntry{dir: filepath.Dir(newpath), oldpath: oldpath, newpath: newpath, prev: prev, hadPrev: err == nil}
	if err := os.Rename(oldpath, newpath); err != nil {
		return err
	}
	c.pending = append(c.pending, e)
	if s, ok := c.synced[oldpath]; ok {
		c.synced[newpath] = s
		delete(c.synced, oldpath)
	}
	return nil
}

func (c *crashFS) Remove(name string) error {
	if err := c.op(); err != nil {
		return err
	}
	delete(c.synced, name)
	return os.Remove(name)
}

func (c *crashFS) MkdirAll(path string, perm os.FileMode) error {
	if err := c.op(); err != nil {
		return err
	}
	return os.MkdirAll(path, perm)
}

func (c *crashFS) SyncDir(path string) error {
	if err := c.op(); err != nil {
		return err
	}
	kept := c.pending[:0]
	for _, p := range c.pending {
		if p.dir != path {
			kept = append(kept, p)
		}
	}
	c.pending = kept
	return OSFS{}.SyncDir(path)
}

type crashFile struct {
	*os.File
	fs *crashFS
}

func (f *crashFile) Write(p []byte) (int, error) {
	if err := f.fs.op(); err != nil {
		return 0, err
	}
	return f.File.Write(p)
}

func (f *crashFile) Truncate(size int64) error {
	if err := f.fs.op(); err != nil {
		return err
	}
	if s, ok := f.fs.synced[f.Name()]; ok && size < s {
		f.fs.synced[f.Name()] = size
	}
	return f.File.Truncate(size)
}

func (f *crashFile) Sync() error {
	if err := f.fs.op(); err != nil {
		return err
	}
	st, err := f.File.Stat()
	if err != nil {
		return err
	}
	f.fs.synced[f.Name()] = st.Size()
	return f.File.Sync()
}

func (f *crashFile) Read(p []byte) (int, error) {
	if f.fs.dead {
		return 0, errPowerCut
	}
	return f.File.Read(p)
}
