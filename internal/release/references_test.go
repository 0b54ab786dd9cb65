package release

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/rampartsec/rampart/internal/store"
)

func TestReleasedImages(t *testing.T) {
	f := newFixture(t, "sqlite")
	f.keysInit()
	ctx := context.Background()
	r1 := f.release("1.0.0", []byte("rootfs one"))
	r2 := f.release("2.0.0", []byte("rootfs two"))
	// A draft is no reference value.
	im, err := f.svc.AddImage(ctx, store.System, f.tenant.ID, strings.NewReader("rootfs three"), "rootfs", "3.0.0", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateRelease(ctx, store.System, f.tenant.ID, "gateway", "3.0.0", []string{im.SHA256}); err != nil {
		t.Fatal(err)
	}
	got, err := f.svc.ReleasedImages(ctx, f.tenant.ID, "gateway")
	if err != nil {
		t.Fatal(err)
	}
	want := []ReleasedImage{
		{SHA256: r1.Images[0].SHA256, Component: "rootfs", ImageVersion: "1.0.0", Release: "1.0.0"},
		{SHA256: r2.Images[0].SHA256, Component: "rootfs", ImageVersion: "2.0.0", Release: "2.0.0", Newest: true},
	}
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("ReleasedImages (-got +want):\n%s", diff)
	}

	// Revoking the newest makes the previous signed release the newest.
	if _, err := f.svc.Revoke(ctx, store.System, f.tenant.ID, "gateway", "2.0.0", "CVE-2026-0001"); err != nil {
		t.Fatal(err)
	}
	got, err = f.svc.ReleasedImages(ctx, f.tenant.ID, "gateway")
	if err != nil {
		t.Fatal(err)
	}
	want[0].Newest, want[1].Newest, want[1].Revoked = true, false, true
	if diff := cmp.Diff(got, want); diff != "" {
		t.Errorf("after revocation (-got +want):\n%s", diff)
	}
	if other, err := f.svc.ReleasedImages(ctx, "another-tenant", "gateway"); err != nil || len(other) != 0 {
		t.Errorf("another tenant sees %d images, %v", len(other), err)
	}
}
