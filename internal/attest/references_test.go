package attest

import (
	"testing"

	"github.com/google/go-cmp/cmp"
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
