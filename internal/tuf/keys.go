// Package tuf owns Rampart's update metadata: the offline key sets kept by
// release managers, the image repository's TUF roles (root, targets,
// snapshot, timestamp) and the per-device director metadata, all built and
// signed with go-tuf v2's metadata package.
//
// The server and the admin CLI import it; the device agent must not: it
// verifies metadata with go-tuf's updater in internal/agent/update and
// shares only the wire format in internal/deviceapi.
package tuf

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/sigstore/sigstore/pkg/signature"
	"github.com/theupdateframework/go-tuf/v2/metadata"
	"golang.org/x/crypto/scrypt"

	"github.com/rampartsec/rampart/internal/public"
)

// Sentinel errors.
var (
	// ErrPassphrase means a key file did not decrypt with the passphrase.
	ErrPassphrase = errors.New("tuf: wrong passphrase or corrupted key file")
	// ErrThreshold means fewer signing keys than the role's threshold were available.
	ErrThreshold = errors.New("tuf: not enough signing keys for the role's threshold")
	// ErrVerify means metadata failed signature, version or type checks.
	ErrVerify = errors.New("tuf: metadata verification failed")
	// ErrKeyFile means a key file is malformed.
	ErrKeyFile = errors.New("tuf: malformed key file")
)

// KeyFileFormat names the on-disk format of an encrypted key file.
const KeyFileFormat = "rampart-tuf-key/1"

// Scrypt cost parameters used for new key files (about 64 MiB and a
// fraction of a second per key on a laptop).
const (
	scryptN = 1 << 16
	scryptR = 8
	scryptP = 1
)

// PrivateKey is one ed25519 signing key and the role it was created for.
type PrivateKey struct {
	Role    string
	Private ed25519.PrivateKey
}

// GenerateKey creates a fresh ed25519 key for role.
func GenerateKey(role string) (*PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tuf.GenerateKey: %w", err)
	}
	return &PrivateKey{Role: role, Private: priv}, nil
}

// Public returns the TUF public key.
func (k *PrivateKey) Public() *metadata.Key {
	key, err := metadata.KeyFromPublicKey(k.Private.Public().(ed25519.PublicKey))
	if err != nil {
		// ed25519 keys are always supported by go-tuf.
		panic(fmt.Sprintf("tuf: ed25519 public key refused: %v", err))
	}
	return key
}

// ID returns the TUF key ID (hex SHA-256 of the canonical public key).
func (k *PrivateKey) ID() string {
	id, err := k.Public().ID()
	if err != nil {
		panic(fmt.Sprintf("tuf: key id of an ed25519 key: %v", err))
	}
	return id
}

func (k *PrivateKey) signer() (signature.Signer, error) {
	s, err := signature.LoadED25519Signer(k.Private)
	if err != nil {
		return nil, fmt.Errorf("load signer: %w", err)
	}
	return s, nil
}

// KeySet is the set of offline keys held by one key holder (or, for
// k-of-n thresholds, the union of the key holders present at a signing).
type KeySet struct {
	Keys []*PrivateKey
}

// GenerateKeySet creates n root keys and n targets keys.
func GenerateKeySet(n int) (*KeySet, error) {
	if n < 1 || n > 255 {
		return nil, fmt.Errorf("tuf.GenerateKeySet: key count %d out of range 1-255", n)
	}
	ks := &KeySet{}
	for _, role := range []string{metadata.ROOT, metadata.TARGETS} {
		for range n {
			k, err := GenerateKey(role)
			if err != nil {
				return nil, fmt.Errorf("tuf.GenerateKeySet: %w", err)
			}
			ks.Keys = append(ks.Keys, k)
		}
	}
	return ks, nil
}

// Role returns the keys of ks created for role.
func (ks *KeySet) Role(role string) []*PrivateKey {
	var out []*PrivateKey
	for _, k := range ks.Keys {
		if k.Role == role {
			out = append(out, k)
		}
	}
	return out
}

// Key returns the key with the given ID, or nil.
func (ks *KeySet) Key(id string) *PrivateKey {
	for _, k := range ks.Keys {
		if k.ID() == id {
			return k
		}
	}
	return nil
}

// keyFile is the JSON layout of DIR/<role>-<keyid prefix>.key.
type keyFile struct {
	Format     string  `json:"format"`
	Role       string  `json:"role"`
	KeyID      string  `json:"keyid"`
	KeyType    string  `json:"keytype"`
	Public     string  `json:"public"`
	KDF        kdfInfo `json:"kdf"`
	Cipher     string  `json:"cipher"`
	Nonce      string  `json:"nonce"`
	Ciphertext string  `json:"ciphertext"`
}

type kdfInfo struct {
	Name string `json:"name"`
	Salt string `json:"salt"`
	N    int    `json:"n"`
	R    int    `json:"r"`
	P    int    `json:"p"`
}

// EncryptKey returns the key file bytes for k, its 32-byte seed sealed with
// AES-256-GCM under a key derived from passphrase by scrypt. The role, key
// ID and public key are authenticated as additional data.
func EncryptKey(k *PrivateKey, passphrase []byte) ([]byte, error) {
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("tuf.EncryptKey: empty passphrase")
	}
	salt := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, salt); err != nil {
		return nil, fmt.Errorf("tuf.EncryptKey: %w", err)
	}
	kf := keyFile{
		Format:  KeyFileFormat,
		Role:    k.Role,
		KeyID:   k.ID(),
		KeyType: metadata.KeyTypeEd25519,
		Public:  hex.EncodeToString(k.Private.Public().(ed25519.PublicKey)),
		KDF:     kdfInfo{Name: "scrypt", Salt: base64.StdEncoding.EncodeToString(salt), N: scryptN, R: scryptR, P: scryptP},
		Cipher:  "aes-256-gcm",
	}
	aead, err := kf.aead(passphrase)
	if err != nil {
		return nil, fmt.Errorf("tuf.EncryptKey: %w", err)
	}
	nonce := make([]byte, aead.NonceSize())
	if _, err := io.ReadFull(rand.Reader, nonce); err != nil {
		return nil, fmt.Errorf("tuf.EncryptKey: %w", err)
	}
	kf.Nonce = base64.StdEncoding.EncodeToString(nonce)
	kf.Ciphertext = base64.StdEncoding.EncodeToString(aead.Seal(nil, nonce, k.Private.Seed(), kf.aad()))
	b, err := json.MarshalIndent(kf, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tuf.EncryptKey: %w", err)
	}
	return append(b, '\n'), nil
}

// DecryptKey opens a key file made by EncryptKey.
func DecryptKey(data, passphrase []byte) (*PrivateKey, error) {
	var kf keyFile
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&kf); err != nil {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: %w", ErrKeyFile, err)
	}
	if kf.Format != KeyFileFormat || kf.KeyType != metadata.KeyTypeEd25519 || kf.Cipher != "aes-256-gcm" || kf.KDF.Name != "scrypt" {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: unsupported format", ErrKeyFile)
	}
	if kf.Role != metadata.ROOT && kf.Role != metadata.TARGETS {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: role %q", ErrKeyFile, kf.Role)
	}
	// Bound the KDF cost a file may ask for: N up to 2^20, r*p small.
	if kf.KDF.N < 1<<10 || kf.KDF.N > 1<<20 || kf.KDF.R < 1 || kf.KDF.R > 32 || kf.KDF.P < 1 || kf.KDF.P > 16 {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: scrypt parameters out of range", ErrKeyFile)
	}
	aead, err := kf.aead(passphrase)
	if err != nil {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: %w", ErrKeyFile, err)
	}
	nonce, err1 := base64.StdEncoding.DecodeString(kf.Nonce)
	ct, err2 := base64.StdEncoding.DecodeString(kf.Ciphertext)
	if err := errors.Join(err1, err2); err != nil || len(nonce) != aead.NonceSize() {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: bad nonce or ciphertext", ErrKeyFile)
	}
	seed, err := aead.Open(nil, nonce, ct, kf.aad())
	if err != nil {
		return nil, fmt.Errorf("tuf.DecryptKey: %w", ErrPassphrase)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: seed length %d", ErrKeyFile, len(seed))
	}
	k := &PrivateKey{Role: kf.Role, Private: ed25519.NewKeyFromSeed(seed)}
	if k.ID() != kf.KeyID {
		return nil, fmt.Errorf("tuf.DecryptKey: %w: key id does not match the key", ErrKeyFile)
	}
	return k, nil
}

func (kf *keyFile) aad() []byte {
	return []byte(kf.Format + "\x00" + kf.Role + "\x00" + kf.KeyID + "\x00" + kf.Public)
}

func (kf *keyFile) aead(passphrase []byte) (cipher.AEAD, error) {
	salt, err := base64.StdEncoding.DecodeString(kf.KDF.Salt)
	if err != nil || len(salt) < 16 {
		return nil, fmt.Errorf("bad salt")
	}
	key, err := scrypt.Key(passphrase, salt, kf.KDF.N, kf.KDF.R, kf.KDF.P, 32)
	if err != nil {
		return nil, fmt.Errorf("scrypt: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

// KeyFileName is the file name of k inside a key directory.
func KeyFileName(k *PrivateKey) string {
	return fmt.Sprintf("%s-%s.key", k.Role, k.ID()[:16])
}

// SaveKeys writes each key of ks to dir (created with mode 0700) as an
// encrypted key file with mode 0600. Existing files are never overwritten.
func SaveKeys(dir string, ks *KeySet, passphrase []byte) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("tuf.SaveKeys: %w", err)
	}
	for _, k := range ks.Keys {
		b, err := EncryptKey(k, passphrase)
		if err != nil {
			return fmt.Errorf("tuf.SaveKeys: %w", err)
		}
		if err := writeNew(filepath.Join(dir, KeyFileName(k)), b, 0o600); err != nil {
			return fmt.Errorf("tuf.SaveKeys: %w", err)
		}
	}
	return nil
}

// LoadKeys decrypts every *.key file in dir with passphrase. Every file must
// decrypt: a key directory has one passphrase.
func LoadKeys(dir string, passphrase []byte) (*KeySet, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.key"))
	if err != nil {
		return nil, fmt.Errorf("tuf.LoadKeys: %w", err)
	}
	slices.Sort(names)
	ks := &KeySet{}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			return nil, public.Wrap(fmt.Errorf("tuf.LoadKeys: %w", err), public.Invalid, "cannot read key file %s (%v)", name, errors.Unwrap(err))
		}
		k, err := DecryptKey(b, passphrase)
		switch {
		case errors.Is(err, ErrPassphrase):
			return nil, public.Wrap(fmt.Errorf("tuf.LoadKeys: %s: %w", name, err), public.Invalid,
				"key file %s does not open with this passphrase: give the one `rampart keys init` used (--passphrase-file or RAMPART_KEYS_PASSPHRASE)", name)
		case err != nil:
			return nil, public.Wrap(fmt.Errorf("tuf.LoadKeys: %s: %w", name, err), public.Invalid,
				"%s is not a key file `rampart keys init` wrote; move it out of %s", name, dir)
		}
		ks.Keys = append(ks.Keys, k)
	}
	if len(ks.Keys) == 0 {
		return nil, public.Errorf(public.Invalid, "no key files (*.key) in %s: give the folder `rampart keys init --dir` created", dir)
	}
	return ks, nil
}

// writeNew writes a file that must not exist yet, syncing it to disk.
func writeNew(name string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
