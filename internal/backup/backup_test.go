package backup

import (
	"archive/tar"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rampartsec/rampart/internal/public"
)

// TestRestoreRefusesHostileArchives: entries outside the data folder, links, a blob whose bytes
// are not its name and an archive with no manifest are refused, and nothing is written.
func TestRestoreRefusesHostileArchives(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		entries []tar.Header
		want    string
	}{
		{"escape", []tar.Header{{Name: "rampart-backup/../escaped", Typeflag: tar.TypeReg, Size: 1}}, `unexpected entry "rampart-backup/../escaped"`},
		{"absolute", []tar.Header{{Name: "/etc/passwd", Typeflag: tar.TypeReg, Size: 1}}, `unexpected entry "/etc/passwd"`},
		{"nested", []tar.Header{{Name: "rampart-backup/a/b", Typeflag: tar.TypeReg, Size: 1}}, `unexpected entry "rampart-backup/a/b"`},
		{"symlink", []tar.Header{{Name: "rampart-backup/master.key", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}}, `unexpected entry "rampart-backup/master.key"`},
		{"no manifest", []tar.Header{{Name: "rampart-backup/master.key", Typeflag: tar.TypeReg, Size: 1}}, "no manifest: the archive is cut short"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			work := t.TempDir()
			archive := filepath.Join(work, "a.tar")
			f, err := os.Create(archive)
			if err != nil {
				t.Fatal(err)
			}
			tw := tar.NewWriter(f)
			for _, h := range tc.entries {
				h.Mode = 0o600
				if err := tw.WriteHeader(&h); err != nil {
					t.Fatal(err)
				}
				if h.Size > 0 {
					tw.Write([]byte(strings.Repeat("x", int(h.Size))))
				}
			}
			tw.Close()
			f.Close()
			dir := filepath.Join(work, "data")
			_, err = Restore(ctx, archive, dir)
			msg, _ := public.Message(err)
			if !strings.HasSuffix(msg, tc.want) {
				t.Fatalf("Restore: %q, want it to end with %q", msg, tc.want)
			}
			left, _ := os.ReadDir(work)
			if len(left) != 1 {
				t.Fatalf("a refused restore left files beside the archive: %v", left)
			}
		})
	}
}

// TestCreateRefusals: a folder without an SQLite database (a PostgreSQL server's) is pointed to
// pg_dump; nothing is written.
func TestCreateRefusals(t *testing.T) {
	dir, out := t.TempDir(), t.TempDir()
	_, err := Create(context.Background(), dir, filepath.Join(out, "b"))
	msg, _ := public.Message(err)
	if !strings.Contains(msg, "holds no SQLite database (rampart.db); a server on PostgreSQL is backed up with pg_dump") {
		t.Fatalf("Create on a folder without a database: %q", msg)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("a refused backup left %v", left)
	}
}
