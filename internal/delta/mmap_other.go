//go:build !(linux || darwin || freebsd || netbsd || openbsd)

package delta

import (
	"fmt"
	"os"
)

// MapFile reads path into memory on platforms without mmap support.
func MapFile(path string) ([]byte, func() error, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("delta.MapFile: %w", err)
	}
	return b, func() error { return nil }, nil
}
