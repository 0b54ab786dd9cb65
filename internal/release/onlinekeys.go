package release

import (
	"errors"
	"fmt"
	"os"

	"github.com/rampartsec/rampart/internal/tuf"
)

// LoadOnlineKeys reads the server's online TUF keys from path, creating
// them (mode 0600) on first start.
func LoadOnlineKeys(path string) (*tuf.OnlineKeys, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		k, err := tuf.ParseOnlineKeys(b)
		if err != nil {
			return nil, false, fmt.Errorf("release.LoadOnlineKeys: %s: %w", path, err)
		}
		return k, false, nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	k, err := tuf.GenerateOnlineKeys()
	if err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	b, err = tuf.MarshalOnlineKeys(k)
	if err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, false, fmt.Errorf("release.LoadOnlineKeys: %w", err)
	}
	return k, true, nil
}
