package tuf

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/theupdateframework/go-tuf/v2/metadata"
)

// Online role names. Snapshot and timestamp are the image repository's
// TUF roles; director signs the per-device director metadata.
const (
	RoleDirector = "director"
)

// OnlineKeys are the keys the server holds: they sign the image
// repository's snapshot and timestamp and every device's director metadata.
// They never sign root or the image repository's targets.
type OnlineKeys struct {
	Snapshot  *PrivateKey
	Timestamp *PrivateKey
	Director  *PrivateKey
}

// GenerateOnlineKeys creates fresh online keys.
func GenerateOnlineKeys() (*OnlineKeys, error) {
	var ks [3]*PrivateKey
	for i, role := range []string{metadata.SNAPSHOT, metadata.TIMESTAMP, RoleDirector} {
		k, err := GenerateKey(role)
		if err != nil {
			return nil, fmt.Errorf("tuf.GenerateOnlineKeys: %w", err)
		}
		ks[i] = k
	}
	return &OnlineKeys{Snapshot: ks[0], Timestamp: ks[1], Director: ks[2]}, nil
}

type onlineFile struct {
	Format    string `json:"format"`
	Snapshot  string `json:"snapshot"`
	Timestamp string `json:"timestamp"`
	Director  string `json:"director"`
}

const onlineFormat = "rampart-tuf-online/1"

// MarshalOnlineKeys encodes the online keys (hex ed25519 seeds) for the
// server's data directory or database. The result is secret.
func MarshalOnlineKeys(o *OnlineKeys) ([]byte, error) {
	return json.MarshalIndent(onlineFile{
		Format:    onlineFormat,
		Snapshot:  hex.EncodeToString(o.Snapshot.Private.Seed()),
		Timestamp: hex.EncodeToString(o.Timestamp.Private.Seed()),
		Director:  hex.EncodeToString(o.Director.Private.Seed()),
	}, "", "  ")
}

// ParseOnlineKeys decodes MarshalOnlineKeys' output.
func ParseOnlineKeys(data []byte) (*OnlineKeys, error) {
	var f onlineFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("tuf.ParseOnlineKeys: %w", err)
	}
	if f.Format != onlineFormat {
		return nil, fmt.Errorf("tuf.ParseOnlineKeys: unsupported format %q", f.Format)
	}
	var out [3]*PrivateKey
	for i, s := range []struct{ role, hex string }{{metadata.SNAPSHOT, f.Snapshot}, {metadata.TIMESTAMP, f.Timestamp}, {RoleDirector, f.Director}} {
		seed, err := hex.DecodeString(s.hex)
		if err != nil || len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("tuf.ParseOnlineKeys: bad %s key", s.role)
		}
		out[i] = &PrivateKey{Role: s.role, Private: ed25519.NewKeyFromSeed(seed)}
	}
	return &OnlineKeys{Snapshot: out[0], Timestamp: out[1], Director: out[2]}, nil
}

// OnlinePublic is what the offline side needs to know about the online keys
// to write them into root metadata.
type OnlinePublic struct {
	Snapshot  *metadata.Key `json:"snapshot"`
	Timestamp *metadata.Key `json:"timestamp"`
	Director  *metadata.Key `json:"director"`
}

// Public returns the public halves of o.
func (o *OnlineKeys) Public() OnlinePublic {
	return OnlinePublic{Snapshot: o.Snapshot.Public(), Timestamp: o.Timestamp.Public(), Director: o.Director.Public()}
}
