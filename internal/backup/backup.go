// Package backup makes and restores online backups of a Rampart server that keeps its data
// under one folder (SQLite and file blobs): a consistent snapshot of the database taken while
// the server serves, the blobs that snapshot names, and the folder's key and certificate files
// as they are (tenant CA keys stay sealed in the database under master.key). An archive is a
// tar file that ends with a manifest of every file's SHA-256; a restore checks all of it before
// it creates the data folder. The CLI's backup and restore verbs import it, and the server reads
// the mark a restore leaves (RestoredFile). PostgreSQL servers are backed up with pg_dump and
// their blob store (doc/operations.md).
package backup

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/rampartsec/rampart/internal/public"
	"github.com/rampartsec/rampart/internal/store"
)

// Format names the archive layout; a restore refuses any other.
const Format = "rampart-backup/1"

// Names inside an archive and the data folder.
const (
	prefix       = "rampart-backup/"
	manifestName = "MANIFEST.json"
	databaseName = "rampart.db"
	blobsDir     = "blobs/sha256/"
)

// RestoredFile is the file Restore leaves in the data folder (with the archive's manifest time):
// the server that starts on the folder raises its TUF metadata versions above anything the
// server backed up could have signed after the backup (release.Service.RaiseVersions), then
// removes it.
const RestoredFile = "restored"

// Manifest is the archive's last entry: what it holds, each file with its SHA-256.
type Manifest struct {
	Format  string    `json:"format"`
	Created time.Time `json:"created"`
	// Schema lists the database's migrations, so an operator sees which Rampart can open it.
	Schema []string `json:"schema"`
	Files  []File   `json:"files"`
}

// File is one file of the data folder in the archive.
type File struct {
	Path   string `json:"path"` // relative to the data folder, with slashes
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	Mode   uint32 `json:"mode"`
}

// Summary is what Create and Restore report.
type Summary struct {
	Files, Blobs int
	Bytes        int64
	Schema       string // the newest migration
}

// Create writes a backup of the data folder dir to the file to, which must not exist. It may run
// while a server serves from dir: the database is copied by SQLite's VACUUM INTO (one read
// snapshot), then every blob that snapshot names (blobs are written before the rows naming them
// and never change), then the folder's other files (keys, certificates, the first admin token).
func Create(ctx context.Context, dir, to string) (Summary, error) {
	db := filepath.Join(dir, databaseName)
	if _, err := os.Stat(db); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", public.Errorf(public.Invalid,
			"%s holds no SQLite database (rampart.db); a server on PostgreSQL is backed up with pg_dump and its blob store (doc/operations.md)", dir))
	}
	if _, err := os.Lstat(to); err == nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", public.Errorf(public.Conflict, "%s already exists; give a new file", to))
	}
	work, err := os.MkdirTemp(filepath.Dir(to), ".rampart-backup-*")
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", public.Errorf(public.Invalid, "cannot write beside %s: %w", to, err))
	}
	defer os.RemoveAll(work)
	snap := filepath.Join(work, databaseName)
	if err := store.SnapshotSQLite(ctx, db, snap); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	info, err := store.InspectSQLite(ctx, snap)
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}

	tmp := filepath.Join(work, "archive.tar")
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	defer out.Close()
	tw := tar.NewWriter(out)
	m := Manifest{Format: Format, Created: time.Now().UTC(), Schema: info.Schema}
	var sum Summary
	add := func(rel, src string) error {
		f, err := writeFile(tw, rel, src)
		if err != nil {
			return err
		}
		m.Files = append(m.Files, f)
		sum.Files++
		sum.Bytes += f.Size
		return nil
	}
	if err := add(databaseName, snap); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	for _, b := range info.Blobs {
		if err := add(blobsDir+b, filepath.Join(dir, filepath.FromSlash(blobsDir), b)); errors.Is(err, os.ErrNotExist) {
			return Summary{}, fmt.Errorf("backup.Create: %w", public.Errorf(public.Invalid,
				"the database names blob %s, which %s lacks; a server with --blobs s3://... keeps blobs in its bucket, back that up beside the database", b, filepath.Join(dir, "blobs")))
		} else if err != nil {
			return Summary{}, fmt.Errorf("backup.Create: blob %s: %w", b, err)
		}
		sum.Blobs++
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	for _, e := range entries {
		// The database and its journal came in the snapshot; blobs by name; tmp holds uploads in
		// flight and local copies.
		if !e.Type().IsRegular() || strings.HasPrefix(e.Name(), databaseName) {
			continue
		}
		if err := add(e.Name(), filepath.Join(dir, e.Name())); err != nil {
			return Summary{}, fmt.Errorf("backup.Create: %w", err)
		}
	}
	mb, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	if err := tw.WriteHeader(&tar.Header{Name: prefix + manifestName, Mode: 0o600, Size: int64(len(mb)), ModTime: m.Created, Typeflag: tar.TypeReg}); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	if _, err := tw.Write(mb); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	if err := tw.Close(); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	if err := out.Sync(); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	if err := out.Close(); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", err)
	}
	// Link rather than rename, so that a file made at `to` meanwhile is not replaced.
	if err := os.Link(tmp, to); err != nil {
		return Summary{}, fmt.Errorf("backup.Create: %w", public.Errorf(public.Conflict, "cannot create %s: %w", to, err))
	}
	if len(info.Schema) > 0 {
		sum.Schema = info.Schema[len(info.Schema)-1]
	}
	return sum, nil
}

// writeFile adds the file src to the archive as rel, hashing it on the way.
func writeFile(tw *tar.Writer, rel, src string) (File, error) {
	f, err := os.Open(src)
	if err != nil {
		return File{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return File{}, err
	}
	mode := uint32(fi.Mode().Perm())
	if err := tw.WriteHeader(&tar.Header{Name: prefix + rel, Mode: int64(mode), Size: fi.Size(), ModTime: fi.ModTime(), Typeflag: tar.TypeReg}); err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tw, h), f)
	if err != nil {
		return File{}, err
	}
	if n != fi.Size() {
		return File{}, fmt.Errorf("%s changed size while it was read", src)
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Mode: mode}, nil
}

// Restore unpacks the archive from into the data folder dir, which must be absent or empty. The
// archive is checked whole before dir is created: each file against the manifest's SHA-256 and
// size, each blob against its name, the set of files against the manifest, the database with
// SQLite's integrity check and for every blob it names. On any failure dir is left as it was.
func Restore(ctx context.Context, from, dir string) (Summary, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return Summary{}, fmt.Errorf("backup.Restore: %w", public.Errorf(public.Conflict, "%s is not empty; restore into a new or empty folder", dir))
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, fmt.Errorf("backup.Restore: %w", public.Errorf(public.Invalid, "cannot read %s: %w", dir, err))
	}
	in, err := os.Open(from)
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Restore: %w", public.Errorf(public.Invalid, "cannot open the backup: %w", err))
	}
	defer in.Close()
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return Summary{}, fmt.Errorf("backup.Restore: %w", err)
	}
	work, err := os.MkdirTemp(parent, ".rampart-restore-*")
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Restore: %w", err)
	}
	defer os.RemoveAll(work)
	sum, err := unpack(ctx, in, work)
	if err != nil {
		return Summary{}, fmt.Errorf("backup.Restore: %w", public.Errorf(public.Invalid, "%s is not a sound Rampart backup: %w", from, err))
	}
	if err := os.Remove(dir); err != nil && !errors.Is(err, os.ErrNotExist) {
		return Summary{}, fmt.Errorf("backup.Restore: %w", err)
	}
	if err := os.Rename(work, dir); err != nil {
		return Summary{}, fmt.Errorf("backup.Restore: %w", err)
	}
	return sum, nil
}

// unpack reads the archive into work and checks it.
func unpack(ctx context.Context, r io.Reader, work string) (Summary, error) {
	tr := tar.NewReader(r)
	got := map[string]File{}
	var m *Manifest
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return Summary{}, err
		}
		if m != nil {
			return Summary{}, fmt.Errorf("%s follows the manifest", hdr.Name)
		}
		rel, ok := strings.CutPrefix(hdr.Name, prefix)
		if !ok || hdr.Typeflag != tar.TypeReg || !validPath(rel) {
			return Summary{}, fmt.Errorf("unexpected entry %q", hdr.Name)
		}
		if rel == manifestName {
			m = new(Manifest)
			dec := json.NewDecoder(io.LimitReader(tr, 64<<20))
			dec.DisallowUnknownFields()
			if err := dec.Decode(m); err != nil {
				return Summary{}, fmt.Errorf("manifest: %w", err)
			}
			continue
		}
		if _, dup := got[rel]; dup {
			return Summary{}, fmt.Errorf("%s appears twice", rel)
		}
		f, err := readFile(tr, work, rel, hdr.Mode)
		if err != nil {
			return Summary{}, err
		}
		got[rel] = f
	}
	if m == nil {
		return Summary{}, errors.New("no manifest: the archive is cut short")
	}
	if m.Format != Format {
		return Summary{}, fmt.Errorf("format %q, want %q", m.Format, Format)
	}
	if len(m.Files) != len(got) {
		return Summary{}, fmt.Errorf("the manifest lists %d files, the archive holds %d", len(m.Files), len(got))
	}
	var sum Summary
	for _, want := range m.Files {
		f, ok := got[want.Path]
		if !ok {
			return Summary{}, fmt.Errorf("%s is in the manifest but not the archive", want.Path)
		}
		if f.Size != want.Size || f.SHA256 != want.SHA256 {
			return Summary{}, fmt.Errorf("%s does not match its manifest entry (altered or damaged)", want.Path)
		}
		if b, ok := strings.CutPrefix(want.Path, blobsDir); ok {
			if b != f.SHA256 {
				return Summary{}, fmt.Errorf("blob %s holds bytes of another hash", b)
			}
			sum.Blobs++
		}
		sum.Files++
		sum.Bytes += f.Size
	}
	info, err := store.InspectSQLite(ctx, filepath.Join(work, databaseName))
	if err != nil {
		if msg, ok := public.Message(err); ok {
			return Summary{}, errors.New(msg)
		}
		return Summary{}, err
	}
	for _, b := range info.Blobs {
		if _, ok := got[blobsDir+b]; !ok {
			return Summary{}, fmt.Errorf("the database names blob %s, which the archive lacks", b)
		}
	}
	if len(info.Schema) > 0 {
		sum.Schema = info.Schema[len(info.Schema)-1]
	}
	// Rampart's own folders, as a server makes them.
	for _, d := range []string{"blobs/sha256", "blobs/tmp"} {
		if err := os.MkdirAll(filepath.Join(work, filepath.FromSlash(d)), 0o700); err != nil {
			return Summary{}, err
		}
	}
	mark, err := json.Marshal(struct {
		BackupCreated time.Time `json:"backup_created"`
	}{m.Created})
	if err != nil {
		return Summary{}, err
	}
	if err := os.WriteFile(filepath.Join(work, RestoredFile), append(mark, '\n'), 0o600); err != nil {
		return Summary{}, err
	}
	return sum, nil
}

// validPath accepts the names a backup writes: a file at the top of the data folder, or a blob.
func validPath(rel string) bool {
	if b, ok := strings.CutPrefix(rel, blobsDir); ok {
		return len(b) == 64 && strings.Trim(b, "0123456789abcdef") == ""
	}
	return rel != "" && rel == path.Clean(rel) && !strings.ContainsAny(rel, `/\`) && rel != "." && rel != ".."
}

func readFile(r io.Reader, work, rel string, mode int64) (File, error) {
	dst := filepath.Join(work, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return File{}, err
	}
	perm := os.FileMode(mode) & 0o644 // never more than the owner's read-write and others' read
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o600)
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), r)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return File{}, fmt.Errorf("%s: %w", rel, err)
	}
	return File{Path: rel, Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Mode: uint32(perm)}, nil
}
