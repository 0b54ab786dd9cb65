//go:build linux || darwin || freebsd || netbsd || openbsd

package delta

import (
	"fmt"
	"os"
	"syscall"
)

// MapFile maps path read-only so a base image used as a dictionary stays in
// the page cache instead of the Go heap. The caller must call the returned
// release function when done.
func MapFile(path string) ([]byte, func() error, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("delta.MapFile: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("delta.MapFile: %w", err)
	}
	if st.Size() == 0 {
		return []byte{}, func() error { return nil }, nil
	}
	if st.Size() > int64(^uint(0)>>1) {
		return nil, nil, fmt.Errorf("delta.MapFile: %s is too large to map", path)
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		return nil, nil, fmt.Errorf("delta.MapFile: %w", err)
	}
	return b, func() error { return syscall.Munmap(b) }, nil
}
