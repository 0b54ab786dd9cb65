// Package module is the agent's installer for the module:NAME image types: it runs a Mender
// update module, unchanged, through the update-module protocol v3. The image is a Mender
// artifact (format version 3, one payload of type NAME) that the updater already verified
// against the image repository and the director; the installer unpacks it into the protocol's
// file tree (version, current_artifact_*, header/, tmp/, and files/ or, when the module streams
// in Download, stream-next and streams/), and calls the module's states in the documented order:
// Download, ArtifactInstall, NeedsArtifactReboot, ArtifactReboot, ArtifactVerifyReboot,
// ArtifactCommit, and on failure SupportsRollback, ArtifactRollback, ArtifactRollbackReboot,
// ArtifactFailure; Cleanup after any end. Every call is bounded by a timeout per state.
//
// It is imported by the agent only (internal/agent/command builds one installer per module).
package module

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/rampartsec/rampart/internal/agent/update"
	"github.com/rampartsec/rampart/internal/deviceapi"
	"github.com/rampartsec/rampart/internal/public"
)

// DefaultStateTimeout bounds one call of a module.
const DefaultStateTimeout = 30 * time.Minute

// Limits of what the installer reads from an artifact and a module.
const (
	maxHeader = 1 << 20 // each header file
	maxOutput = 64 << 10
)

// Data keys kept in the journal (update.Artifact.Data).
const (
	dataReboot    = "needs_reboot" // the module's NeedsArtifactReboot answer: No, Yes, Automatic
	dataInstalled = "install_started"
	dataRebooted  = "rebooted"
	dataFailed    = "failed"
)

// Config configures the installers of one module folder.
type Config struct {
	// Dir holds the modules, one executable per name (/usr/share/mender/modules/v3).
	Dir string
	// StateTimeout bounds each call of a module; DefaultStateTimeout when zero.
	StateTimeout time.Duration
	// RebootCommand reboots the device for a module that answers Automatic.
	RebootCommand []string
	// DeviceType is written to current_device_type.
	DeviceType string
	Logger     *slog.Logger
}

// Installer runs one update module. It implements update.Installer.
type Installer struct {
	name string
	path string
	cfg  Config
	log  *slog.Logger
}

var nameRe = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)

// Open returns an installer for every executable in cfg.Dir whose name is a valid module name.
func Open(cfg Config) ([]*Installer, error) {
	if cfg.StateTimeout <= 0 {
		cfg.StateTimeout = DefaultStateTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	entries, err := os.ReadDir(cfg.Dir)
	if err != nil {
		return nil, public.Errorf(public.Invalid, "--module-dir %s: %v", cfg.Dir, err)
	}
	var out []*Installer
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !info.Mode().IsRegular() || info.Mode()&0o111 == 0 || !nameRe.MatchString(e.Name()) {
			continue
		}
		out = append(out, &Installer{name: e.Name(), path: filepath.Join(cfg.Dir, e.Name()), cfg: cfg, log: cfg.Logger})
	}
	if len(out) == 0 {
		return nil, public.Errorf(public.Invalid, "--module-dir %s holds no executable update module", cfg.Dir)
	}
	return out, nil
}

// Type implements update.Installer.
func (i *Installer) Type() string { return deviceapi.ImageTypeModulePrefix + i.name }

// moduleErr is a failure of the module: what it was doing, and its own last words.
func (i *Installer) moduleErr(state string, err error, out []byte) error {
	line := update.LastLine(out, 200)
	if line != "" {
		return public.Errorf(public.Unavailable, "update module %s failed in %s: %v: %s", i.name, state, err, line)
	}
	return public.Errorf(public.Unavailable, "update module %s failed in %s: %v", i.name, state, err)
}

// call runs the module in state with the file tree at tree, bounded by the state timeout; the
// module and anything it started are killed past it.
func (i *Installer) call(ctx context.Context, state, tree string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, i.cfg.StateTimeout)
	defer cancel()
	cmd := exec.Command(i.path, state, tree)
	cmd.Dir = tree
	var out bytes.Buffer
	cmd.Stdout = &capped{b: &out, n: maxOutput}
	cmd.Stderr = cmd.Stdout
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, i.moduleErr(state, err, nil)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return out.Bytes(), i.moduleErr(state, err, out.Bytes())
		}
		return out.Bytes(), nil
	case <-ctx.Done():
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return out.Bytes(), public.Errorf(public.Unavailable, "update module %s did not finish %s within %s; it was stopped", i.name, state, i.cfg.StateTimeout)
		}
		return out.Bytes(), ctx.Err()
	}
}

// query runs an information call and returns its answer, one of allowed ("" counts as the
// first); anything else is refused.
func (i *Installer) query(ctx context.Context, q, tree string, allowed ...string) (string, error) {
	out, err := i.call(ctx, q, tree)
	if err != nil {
		return "", err
	}
	ans := strings.TrimSpace(string(out))
	if ans == "" {
		return allowed[0], nil
	}
	for _, a := range allowed {
		if ans == a {
			return a, nil
		}
	}
	shown := ans
	if len(shown) > 80 {
		shown = shown[:80] + "..."
	}
	return "", public.Errorf(public.Unavailable, "update module %s answered %s with %q, not %s", i.name, q, shown, strings.Join(allowed, ", "))
}

// Install implements update.Installer: unpack the artifact into the file tree, Download,
// ArtifactInstall, NeedsArtifactReboot.
func (i *Installer) Install(ctx context.Context, a *update.Artifact) (bool, error) {
	art, err := readArtifact(a.Path)
	if err != nil {
		return false, public.Errorf(public.Unavailable, "the artifact cannot be read: %v", err)
	}
	if art.payloadType != i.name {
		return false, public.Errorf(public.Unavailable, "the artifact's payload is for update module %q, not %s", art.payloadType, i.name)
	}
	tree := a.WorkDir
	if err := os.RemoveAll(tree); err != nil {
		return false, err
	}
	if err := i.layout(tree, a, art); err != nil {
		return false, public.Errorf(public.Unavailable, "cannot lay out the module's file tree: %v", err)
	}
	if err := i.download(ctx, tree, a.Path, art); err != nil {
		return false, err
	}
	a.Data[dataInstalled] = "1"
	if _, err := i.call(ctx, "ArtifactInstall", tree); err != nil {
		return false, err
	}
	reboot, err := i.query(ctx, "NeedsArtifactReboot", tree, "No", "Yes", "Automatic")
	if err != nil {
		return false, err
	}
	if reboot == "Automatic" && len(i.cfg.RebootCommand) == 0 {
		return false, public.Errorf(public.Unavailable, "update module %s needs the device rebooted (Automatic) but the agent has no --reboot-cmd", i.name)
	}
	a.Data[dataReboot] = reboot
	return reboot != "No", nil
}

// layout writes the file tree the protocol documents.
func (i *Installer) layout(tree string, a *update.Artifact, art *artifact) error {
	for _, d := range []string{"header", "tmp"} {
		if err := os.MkdirAll(filepath.Join(tree, d), 0o700); err != nil {
			return err
		}
	}
	files := map[string][]byte{
		"version":                []byte("3"),
		"current_artifact_group": nil,
		"current_artifact_name":  []byte(a.Data[update.DataCurrentRelease]),
		"current_device_type":    []byte(i.cfg.DeviceType),
		"header/artifact_group":  []byte(art.group),
		"header/artifact_name":   []byte(art.name),
		"header/payload_type":    []byte(art.payloadType),
		"header/header-info":     art.headerInfo,
		"header/type-info":       art.typeInfo,
		"header/meta-data":       art.metaData,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(tree, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// download runs the Download state with the streams tree; a module that does not read
// stream-next gets the payload in files/ instead, as Mender does.
func (i *Installer) download(ctx context.Context, tree, artifactPath string, art *artifact) error {
	if err := os.MkdirAll(filepath.Join(tree, "streams"), 0o700); err != nil {
		return err
	}
	next := filepath.Join(tree, "stream-next")
	if err := syscall.Mkfifo(next, 0o600); err != nil {
		return err
	}
	for _, f := range art.files {
		if err := syscall.Mkfifo(filepath.Join(tree, "streams", f.name), 0o600); err != nil {
			return err
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan result, 1)
	go func() {
		out, err := i.call(ctx, "Download", tree)
		done <- result{out, err}
	}()
	streamed := false
	var serr error
	for k := 0; k <= len(art.files) && serr == nil; k++ {
		w, exited, err := openWriter(next, done)
		if err != nil {
			serr = err
			break
		}
		if exited != nil {
			// The module finished without reading (or without reading further).
			if !streamed {
				if exited.err != nil {
					return exited.err
				}
				return i.storeFiles(tree, artifactPath, art)
			}
			if exited.err != nil {
				return exited.err
			}
			return public.Errorf(public.Unavailable, "update module %s stopped reading its streams in Download", i.name)
		}
		streamed = true
		if k == len(art.files) {
			w.Close() // a zero-length read: no more streams
			break
		}
		f := art.files[k]
		_, serr = io.WriteString(w, "streams/"+f.name+"\n")
		w.Close()
		if serr != nil {
			break
		}
		sw, exited, err := openWriter(filepath.Join(tree, "streams", f.name), done)
		if err != nil || exited != nil {
			if exited != nil && exited.err != nil {
				return exited.err
			}
			return public.Errorf(public.Unavailable, "update module %s did not read stream %s in Download", i.name, f.name)
		}
		serr = copyPayload(sw, artifactPath, f)
		sw.Close()
	}
	if serr != nil {
		cancel()
		<-done
		return public.Errorf(public.Unavailable, "streaming the payload to update module %s: %v", i.name, serr)
	}
	r := <-done
	return r.err
}

// result is how a module's call ended.
type result struct {
	out []byte
	err error
}

// openWriter opens a named pipe for writing once a reader has it open, or returns the
// module's result when it exits first.
func openWriter(fifo string, done chan result) (*os.File, *result, error) {
	for {
		fd, err := syscall.Open(fifo, syscall.O_WRONLY|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
		if err == nil {
			if err := syscall.SetNonblock(fd, false); err != nil {
				syscall.Close(fd)
				return nil, nil, err
			}
			return os.NewFile(uintptr(fd), fifo), nil, nil
		}
		if !errors.Is(err, syscall.ENXIO) {
			return nil, nil, err
		}
		select {
		case r := <-done:
			return nil, &r, nil
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// storeFiles puts the payload into files/ for the states after Download.
func (i *Installer) storeFiles(tree, artifactPath string, art *artifact) error {
	dir := filepath.Join(tree, "files")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	for _, f := range art.files {
		out, err := os.OpenFile(filepath.Join(dir, f.name), os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		err = copyPayload(out, artifactPath, f)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return public.Errorf(public.Unavailable, "cannot store payload file %s: %v", f.name, err)
		}
	}
	return nil
}

// Reboot implements update.Installer: the module's ArtifactReboot (Yes) or the agent's
// reboot command (Automatic); in a rollback, ArtifactRollbackReboot or the command.
func (i *Installer) Reboot(ctx context.Context, a *update.Artifact) error {
	state := "ArtifactReboot"
	if a.Data[dataFailed] == "1" {
		state = "ArtifactRollbackReboot"
	}
	if a.Data[dataReboot] == "Yes" {
		_, err := i.call(ctx, state, a.WorkDir)
		return err
	}
	cmd := exec.CommandContext(ctx, i.cfg.RebootCommand[0], i.cfg.RebootCommand[1:]...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return public.Errorf(public.Unavailable, "the reboot command failed: %v: %s", err, update.LastLine(out, 200))
	}
	return nil
}

// Verify implements update.Installer: ArtifactVerifyReboot after a reboot.
func (i *Installer) Verify(ctx context.Context, a *update.Artifact) error {
	if a.Data[dataReboot] == "" || a.Data[dataReboot] == "No" {
		return nil
	}
	a.Data[dataRebooted] = "1"
	_, err := i.call(ctx, "ArtifactVerifyReboot", a.WorkDir)
	return err
}

// Commit implements update.Installer: ArtifactCommit.
func (i *Installer) Commit(ctx context.Context, a *update.Artifact) error {
	_, err := i.call(ctx, "ArtifactCommit", a.WorkDir)
	return err
}

// Rollback implements update.Installer: once ArtifactInstall started, ArtifactRollback when
// the module supports it; a module that rebooted into the new software reboots back.
// ArtifactFailure runs at Cleanup.
func (i *Installer) Rollback(ctx context.Context, a *update.Artifact, reason string) (bool, error) {
	a.Data[dataFailed] = "1"
	if a.Data[dataInstalled] != "1" {
		return false, nil
	}
	if _, err := os.Stat(a.WorkDir); err != nil {
		return false, public.Errorf(public.Unavailable, "the module's file tree is gone: %v", err)
	}
	ans, err := i.query(ctx, "SupportsRollback", a.WorkDir, "No", "Yes")
	if err != nil {
		return false, err
	}
	if ans != "Yes" {
		return false, public.Errorf(public.Unavailable, "update module %s does not support rollback", i.name)
	}
	if _, err := i.call(ctx, "ArtifactRollback", a.WorkDir); err != nil {
		return false, err
	}
	return a.Data[dataRebooted] == "1" && a.Data[dataReboot] != "No", nil
}

// Cleanup implements update.Installer: ArtifactFailure after a failure, then Cleanup, then
// the file tree goes.
func (i *Installer) Cleanup(ctx context.Context, a *update.Artifact) {
	if _, err := os.Stat(a.WorkDir); err != nil {
		return
	}
	if a.Data[dataFailed] == "1" && a.Data[dataInstalled] == "1" {
		if _, err := i.call(ctx, "ArtifactFailure", a.WorkDir); err != nil {
			i.log.Warn("ArtifactFailure", "module", i.name, "err", err)
		}
	}
	if _, err := i.call(ctx, "Cleanup", a.WorkDir); err != nil {
		i.log.Warn("Cleanup", "module", i.name, "err", err)
	}
	if err := os.RemoveAll(a.WorkDir); err != nil {
		i.log.Warn("removing the module's file tree", "err", err)
	}
}

// artifact is what the installer reads of a Mender artifact (format version 3).
type artifact struct {
	name, group, payloadType       string
	headerInfo, typeInfo, metaData []byte
	files                          []payloadFile
}

// payloadFile is one file of data/0000.tar.gz: where its bytes sit in the artifact.
type payloadFile struct {
	name   string
	sha256 string
}

// readArtifact reads the artifact's version, manifest and header, and lists its one payload's
// files, checking each against the manifest's checksum.
func readArtifact(p string) (*artifact, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	tr := tar.NewReader(f)
	art := &artifact{}
	manifest := map[string]string{}
	var sawVersion, sawHeader, sawData bool
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("not a Mender artifact (a tar file): %w", err)
		}
		switch {
		case h.Name == "version":
			b, err := readSmall(tr)
			if err != nil {
				return nil, err
			}
			var v struct {
				Format  string `json:"format"`
				Version int    `json:"version"`
			}
			if json.Unmarshal(b, &v) != nil || v.Format != "mender" || v.Version != 3 {
				return nil, fmt.Errorf("artifact format %s version %d; update modules take version 3", v.Format, v.Version)
			}
			sawVersion = true
		case h.Name == "manifest":
			b, err := readSmall(tr)
			if err != nil {
				return nil, err
			}
			for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if sum, name, ok := strings.Cut(strings.TrimSpace(l), "  "); ok {
					manifest[name] = sum
				}
			}
		case h.Name == "header.tar.gz":
			if err := art.readHeader(tr); err != nil {
				return nil, fmt.Errorf("header: %w", err)
			}
			sawHeader = true
		case strings.HasPrefix(h.Name, "header.tar.") || strings.HasPrefix(h.Name, "data/0000.tar.") && h.Name != "data/0000.tar.gz":
			return nil, fmt.Errorf("%s: only gzip-compressed artifacts are read (mender-artifact write --compression gzip)", h.Name)
		case h.Name == "data/0000.tar.gz":
			if err := art.listData(tr, manifest); err != nil {
				return nil, fmt.Errorf("payload: %w", err)
			}
			sawData = true
		case strings.HasPrefix(h.Name, "data/"):
			return nil, fmt.Errorf("the artifact has more than one payload; an image holds one")
		}
	}
	if !sawVersion || !sawHeader || !sawData {
		return nil, fmt.Errorf("not a complete Mender artifact (version, header.tar.gz and data/0000.tar.gz)")
	}
	return art, nil
}

func readSmall(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxHeader+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxHeader {
		return nil, fmt.Errorf("a header file is larger than %d bytes", maxHeader)
	}
	return b, nil
}

// eachInTarGz calls fn with every entry of the gzip-compressed tar archive r, in order.
func eachInTarGz(r io.Reader, fn func(h *tar.Header, body io.Reader) error) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return err
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := fn(h, tr); err != nil {
			return err
		}
	}
}

func (art *artifact) readHeader(r io.Reader) error {
	err := eachInTarGz(r, func(h *tar.Header, body io.Reader) error {
		b, err := readSmall(body)
		if err != nil {
			return err
		}
		switch h.Name {
		case "header-info":
			art.headerInfo = b
		case "headers/0000/type-info":
			art.typeInfo = b
		case "headers/0000/meta-data":
			art.metaData = b
		default:
			if strings.HasPrefix(h.Name, "headers/") && !strings.HasPrefix(h.Name, "headers/0000/") {
				return fmt.Errorf("the artifact has more than one payload; an image holds one")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	var info struct {
		Payloads []struct {
			Type string `json:"type"`
		} `json:"payloads"`
		Provides struct {
			Name  string `json:"artifact_name"`
			Group string `json:"artifact_group"`
		} `json:"artifact_provides"`
	}
	if err := json.Unmarshal(art.headerInfo, &info); err != nil {
		return fmt.Errorf("header-info: %w", err)
	}
	if len(info.Payloads) != 1 {
		return fmt.Errorf("the artifact has %d payloads; an image holds one", len(info.Payloads))
	}
	art.payloadType, art.name, art.group = info.Payloads[0].Type, info.Provides.Name, info.Provides.Group
	return nil
}

// listData reads the payload's file names and checks their checksums against the manifest.
func (art *artifact) listData(r io.Reader, manifest map[string]string) error {
	err := eachInTarGz(r, func(h *tar.Header, body io.Reader) error {
		name := path.Clean(h.Name)
		if h.Typeflag != tar.TypeReg || strings.Contains(name, "/") || name == "." || name == ".." || strings.HasPrefix(name, ".") {
			return fmt.Errorf("payload entry %q is not a plain file name", h.Name)
		}
		s := sha256.New()
		if _, err := io.Copy(s, body); err != nil {
			return err
		}
		sum := hex.EncodeToString(s.Sum(nil))
		if want, ok := manifest["data/0000/"+name]; !ok || want != sum {
			return fmt.Errorf("payload file %s does not match the artifact's manifest", name)
		}
		art.files = append(art.files, payloadFile{name: name, sha256: sum})
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(art.files, func(a, b int) bool { return art.files[a].name < art.files[b].name })
	return nil
}

// copyPayload writes payload file f, read again from the artifact and checked, to w.
func copyPayload(w io.Writer, artifactPath string, f payloadFile) error {
	af, err := os.Open(artifactPath)
	if err != nil {
		return err
	}
	defer af.Close()
	tr := tar.NewReader(af)
	for {
		h, err := tr.Next()
		if err != nil {
			return fmt.Errorf("payload file %s: %w", f.name, err)
		}
		if h.Name != "data/0000.tar.gz" {
			continue
		}
		zr, err := gzip.NewReader(tr)
		if err != nil {
			return err
		}
		dr := tar.NewReader(zr)
		for {
			dh, err := dr.Next()
			if err != nil {
				return fmt.Errorf("payload file %s: %w", f.name, err)
			}
			if path.Clean(dh.Name) != f.name {
				continue
			}
			s := sha256.New()
			if _, err := io.Copy(io.MultiWriter(w, s), dr); err != nil {
				return err
			}
			if hex.EncodeToString(s.Sum(nil)) != f.sha256 {
				return fmt.Errorf("payload file %s changed", f.name)
			}
			return nil
		}
	}
}

// capped keeps at most n bytes of a module's output (the rest is dropped, not an error).
type capped struct {
	b *bytes.Buffer
	n int
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.n - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}
