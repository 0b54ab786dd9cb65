package sim

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

func TestMemoryDir(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("MemoryDir looks for tmpfs on Linux only")
	}
	root := t.TempDir()
	old := MemoryDirRoot
	MemoryDirRoot = root
	t.Cleanup(func() { MemoryDirRoot = old })

	dir, err := MemoryDir(1)
	if err != nil {
		t.Fatalf("MemoryDir(1): %v", err)
	}
	if filepath.Dir(dir) != root {
		t.Fatalf("MemoryDir(1) = %s, want a folder under %s", dir, root)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("MemoryDir(1) made no folder: %v", err)
	}
	// A fleet larger than any machine's memory is refused with the sizes, and makes nothing.
	if _, err := MemoryDir(1 << 40); err == nil || !strings.Contains(err.Error(), "need about") {
		t.Fatalf("MemoryDir(2^40) = %v, want a refusal naming the space needed", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 1 {
		t.Fatalf("%s holds %d entries after a refusal, want only the first folder", root, len(entries))
	}
	MemoryDirRoot = filepath.Join(root, "missing")
	if _, err := MemoryDir(1); err == nil {
		t.Fatal("MemoryDir under a missing folder succeeded")
	}
}
