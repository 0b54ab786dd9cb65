package tuf

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestKeyFileRoundTrip(t *testing.T) {
	k, err := GenerateKey("root")
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncryptKey(k, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), string(k.Private.Seed())) {
		t.Fatal("key file contains the seed in clear")
	}
	got, err := DecryptKey(b, []byte("correct horse"))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(got.ID(), k.ID()); diff != "" {
		t.Errorf("key id (-got +want):\n%s", diff)
	}
	if !got.Private.Equal(k.Private) {
		t.Error("decrypted key differs")
	}
}

func TestDecryptKeyRefuses(t *testing.T) {
	k, err := GenerateKey("targets")
	if err != nil {
		t.Fatal(err)
	}
	b, err := EncryptKey(k, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		data string
		pass string
		is   error
	}{
		{"wrong passphrase", string(b), "other", ErrPassphrase},
		{"role swapped", strings.Replace(string(b), `"role": "targets"`, `"role": "root"`, 1), "pw", ErrPassphrase},
		{"unknown field", strings.Replace(string(b), `"format"`, `"extra": 1, "format"`, 1), "pw", ErrKeyFile},
		{"huge scrypt cost", strings.Replace(string(b), `"n": 65536`, `"n": 1073741824`, 1), "pw", ErrKeyFile},
		{"not json", "hello", "pw", ErrKeyFile},
		{"other format", strings.Replace(string(b), KeyFileFormat, "x/2", 1), "pw", ErrKeyFile},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecryptKey([]byte(tc.data), []byte(tc.pass))
			if !errors.Is(err, tc.is) {
				t.Fatalf("DecryptKey error = %v, want %v", err, tc.is)
			}
		})
	}
}

func TestSaveLoadKeys(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	ks, err := GenerateKeySet(2)
	if err != nil {
		t.Fatal(err)
	}
	if err := SaveKeys(dir, ks, []byte("pw")); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, KeyFileName(ks.Keys[0])))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("key file mode = %v, want 0600", st.Mode().Perm())
	}
	got, err := LoadKeys(dir, []byte("pw"))
	if err != nil {
		t.Fatal(err)
	}
	ids := func(ks *KeySet) map[string]string {
		m := map[string]string{}
		for _, k := range ks.Keys {
			m[k.ID()] = k.Role
		}
		return m
	}
	if diff := cmp.Diff(ids(got), ids(ks)); diff != "" {
		t.Errorf("loaded keys (-got +want):\n%s", diff)
	}
	if err := SaveKeys(dir, ks, []byte("pw")); err == nil {
		t.Error("SaveKeys overwrote existing key files")
	}
	if _, err := LoadKeys(dir, []byte("wrong")); !errors.Is(err, ErrPassphrase) {
		t.Errorf("LoadKeys with a wrong passphrase: %v", err)
	}
	if _, err := LoadKeys(t.TempDir(), []byte("pw")); err == nil {
		t.Error("LoadKeys accepted an empty directory")
	}
}

func TestOnlineKeysRoundTrip(t *testing.T) {
	o, err := GenerateOnlineKeys()
	if err != nil {
		t.Fatal(err)
	}
	b, err := MarshalOnlineKeys(o)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseOnlineKeys(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{got.Snapshot.ID(), got.Timestamp.ID(), got.Director.ID()}, []string{o.Snapshot.ID(), o.Timestamp.ID(), o.Director.ID()}); diff != "" {
		t.Errorf("ids (-got +want):\n%s", diff)
	}
	for _, bad := range []string{"{}", `{"format":"rampart-tuf-online/1","snapshot":"00","timestamp":"","director":""}`, "nope"} {
		if _, err := ParseOnlineKeys([]byte(bad)); err == nil {
			t.Errorf("ParseOnlineKeys(%q) succeeded", bad)
		}
	}
}
