// Package durable writes the device agent's state files so that a power cut at any moment
// leaves a file with either its old or its new content: certificates, keys, pinned roots, boot
// counters and queued crash batches; and it tells whether a file changed since it was last read
// (VersionOf), so that the agent hashes a file it measures or verifies again only when it did.
// The agent's packages import it; the updater's slots go through their own injectable file
// system (internal/agent/update) so that tests can cut power.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile replaces path with data, readable by its owner only: it writes a hidden temporary
// file beside it (".NAME.*.tmp", which the agent's folder scans skip), syncs it, renames it over
// path and syncs the folder.
func WriteFile(path string, data []byte) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			err = fmt.Errorf("write %s: %w", path, err)
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return err
	}
	if _, err = tmp.Write(data); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
