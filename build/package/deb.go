package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/goreleaser/nfpm/v2"
	"github.com/goreleaser/nfpm/v2/deb"
	"github.com/goreleaser/nfpm/v2/files"
)

// A pkg is one Debian package: its binary, its files from build/package/files and its user.
type pkg struct {
	name        string
	archs       []string
	user        string
	env         string   // its configuration under /etc/rampart
	units       []string // enabled and started by postinst
	description string
	recommends  []string
	doc         string // the doc/ file installed under /usr/share/doc/NAME
	extra       []file
}

type file struct {
	src, dst string
	mode     os.FileMode
}

var packages = []pkg{
	{
		name: "rampart", archs: serverArchs, user: "rampart", env: "rampart.env",
		units:       []string{"rampart.service"},
		description: "Rampart security service for fleets of connected Linux devices\nTPM-backed attestation, short-lived device certificates, signed staged updates and\nvulnerability response, served by rampart server; the admin CLI is the same binary.",
		recommends:  []string{"ca-certificates"},
		doc:         "operations.md",
	},
	{
		name: "rampart-agent", archs: agentArchs, user: "rampart-agent", env: "rampart-agent.env",
		units:       []string{"rampart-agent.service", "rampart-agent-reboot.path"},
		description: "Rampart device agent\nAttests the device with its TPM, installs signed updates into A/B slots (or through\nRAUC), reboots into them, commits after a health check and reports crashes.",
		recommends:  []string{"tpm-udev"},
		doc:         "agent.md",
		extra: []file{
			{"rampart-agent-reboot.path", "/usr/lib/systemd/system/rampart-agent-reboot.path", 0o644},
			{"rampart-agent-reboot.service", "/usr/lib/systemd/system/rampart-agent-reboot.service", 0o644},
			{"request-reboot", "/usr/libexec/rampart-agent/request-reboot", 0o755},
			{"health-check", "/usr/libexec/rampart-agent/health-check", 0o755},
		},
	},
}

// debs writes every package for every architecture into the output folder.
func (b *builder) debs(ctx context.Context) error {
	for _, p := range packages {
		scripts, err := b.scripts(p)
		if err != nil {
			return err
		}
		for _, arch := range p.archs {
			bin, err := b.binary(ctx, target{p.name, arch})
			if err != nil {
				return err
			}
			path, err := b.deb(p, arch, bin, scripts)
			if err != nil {
				return fmt.Errorf("%s %s: %w", p.name, arch, err)
			}
			fmt.Fprintf(os.Stderr, "package: wrote %s\n", path)
		}
	}
	return nil
}

// scripts fills the maintainer-script templates for p into the output folder.
func (b *builder) scripts(p pkg) (map[string]string, error) {
	dir := filepath.Join(b.out, "scripts", p.name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	r := strings.NewReplacer("@NAME@", p.name, "@USER@", p.user, "@ENV@", p.env,
		"@SYSUSERS@", p.name+".conf", "@UNITS@", strings.Join(p.units, " "))
	out := map[string]string{}
	for _, s := range []string{"postinst", "prerm", "postrm"} {
		tmpl, err := os.ReadFile(filepath.Join(b.root, "build", "package", "files", s+".tmpl"))
		if err != nil {
			return nil, err
		}
		path := filepath.Join(dir, s)
		if err := os.WriteFile(path, []byte(r.Replace(string(tmpl))), 0o755); err != nil {
			return nil, err
		}
		out[s] = path
	}
	return out, nil
}

func (b *builder) deb(p pkg, arch, bin string, scripts map[string]string) (string, error) {
	src := func(name string) string { return filepath.Join(b.root, "build", "package", "files", name) }
	info := func(mode os.FileMode) *files.ContentFileInfo {
		return &files.ContentFileInfo{Owner: "root", Group: "root", Mode: mode, MTime: b.mtime}
	}
	contents := files.Contents{
		{Source: bin, Destination: "/usr/bin/" + p.name, FileInfo: info(0o755)},
		{Source: src(p.name + ".service"), Destination: "/usr/lib/systemd/system/" + p.name + ".service", FileInfo: info(0o644)},
		{Source: src(p.name + ".sysusers"), Destination: "/usr/lib/sysusers.d/" + p.name + ".conf", FileInfo: info(0o644)},
		// A conffile: dpkg keeps the operator's changes on upgrade and asks when both changed.
		{Source: src(p.env), Destination: "/etc/rampart/" + p.env, Type: files.TypeConfigNoReplace, FileInfo: info(0o640)},
		{Source: filepath.Join(b.root, "doc", p.doc), Destination: "/usr/share/doc/" + p.name + "/" + p.doc, FileInfo: info(0o644)},
	}
	for _, f := range p.extra {
		contents = append(contents, &files.Content{Source: src(f.src), Destination: f.dst, FileInfo: info(f.mode)})
	}
	in := &nfpm.Info{
		Name: p.name, Arch: arch, Platform: "linux", Version: b.version, VersionSchema: "none",
		Section: "admin", Priority: "optional", Maintainer: "Rampart maintainers <rampart@localhost>",
		Description: p.description, Vendor: "Rampart", MTime: b.mtime,
		Overridables: nfpm.Overridables{
			Recommends: p.recommends,
			Contents:   contents,
			Scripts:    nfpm.Scripts{PostInstall: scripts["postinst"], PreRemove: scripts["prerm"], PostRemove: scripts["postrm"]},
			Deb:        nfpm.Deb{Compression: "xz"},
		},
	}
	in = nfpm.WithDefaults(in)
	if err := nfpm.PrepareForPackager(in, "deb"); err != nil {
		return "", err
	}
	path := filepath.Join(b.out, fmt.Sprintf("%s_%s_%s.deb", p.name, b.version, arch))
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := deb.Default.Package(in, f); err != nil {
		f.Close()
		os.Remove(path)
		return "", err
	}
	return path, f.Close()
}
