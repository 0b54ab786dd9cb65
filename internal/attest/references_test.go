package attest

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/rampartsec/rampart/internal/store"
)

func TestDeriveReferences(t *testing.T) {
	got := DeriveReferences([]ReleasedImage{
		// 1.0 revoked, 2.0 signed, 3.0 newest: the bootloader is in all three.
		{SHA256: "boot", Component: "u-boot", Release: "1.0", Revoked: true},
		{SHA256: "os1", Component: "rootfs", Release: "1.0", Revoked: true},
		{SHA256: "boot", Component: "u-boot", Release: "2.0"},
		{SHA256: "os2", Component: "rootfs", Release: "2.0"},
		{SHA256: "boot", Component: "u-boot", Release: "3.0", Newest: true},
		{SHA256: "os3", Component: "rootfs", Release: "3.0", Newest: true},
	})
	want := map[string]Reference{
		"boot": {Name: "u-boot", Version: "3.0"},
		"os1":  {Name: "rootfs", Version: "1.0", Revoked: true},
		"os2":  {Name: "rootfs", Version: "2.0", Outdated: true},
		"os3":  {Name: "rootfs", Version: "3.0"},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("DeriveReferences (-got +want):\n%s", diff)
	}
	if got := DeriveReferences(nil); len(got) != 0 {
		t.Errorf("no releases gave %d references", len(got))
	}
}

// TestDeriveBootReferences: a PE/EFI image is known by its Authenticode digest too, revoked
// when every release holding it is, and the service's policy appraises boot logs with it.
func TestDeriveBootReferences(t *testing.T) {
	got := DeriveReferences([]ReleasedImage{
		{SHA256: "shim-file", Authenticode: "shim-pe", Component: "shim", Release: "1.0", Revoked: true},
		{SHA256: "grub1-file", Authenticode: "grub1-pe", Component: "grub", Release: "1.0", Revoked: true},
		{SHA256: "shim-file", Authenticode: "shim-pe", Component: "shim", Release: "2.0", Newest: true},
		{SHA256: "grub2-file", Authenticode: "grub2-pe", Component: "grub", Release: "2.0", Newest: true},
	})
	want := map[string]Reference{
		"shim-file":  {Name: "shim", Version: "2.0"},
		"shim-pe":    {Name: "shim", Version: "2.0", Authenticode: true},
		"grub1-file": {Name: "grub", Version: "1.0", Revoked: true},
		"grub1-pe":   {Name: "grub", Version: "1.0", Revoked: true, Authenticode: true},
		"grub2-file": {Name: "grub", Version: "2.0"},
		"grub2-pe":   {Name: "grub", Version: "2.0", Authenticode: true},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("DeriveReferences (-got +want):\n%s", diff)
	}
	pol := policyFrom(store.AttestationPolicy{RequireBootLog: true, BootDigests: []string{"vendor-fw"}}, got)
	if len(pol.BootReferences) != 4 || !pol.BootReferences["grub1-pe"].Revoked || !pol.BootReferences["vendor-fw"].Authenticode ||
		!pol.RequireBootLog {
		t.Errorf("policy boot references %+v", pol.BootReferences)
	}
}
