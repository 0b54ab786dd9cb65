// Package clienv is the plumbing every CLI verb shares: resolving the connection (flags, then
// environment, then the login config file), building the API client, and printing tables or
// JSON. Only the packages under internal/cli import it.
package clienv

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/public"
)

// Env carries the global flags and the output streams to every verb.
type Env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	Server    string
	CAFile    string
	Token     string
	TokenFile string
	Output    string
}

// AddFlags registers the connection and output flags on the root command.
func (e *Env) AddFlags(cmd *cobra.Command) {
	f := cmd.PersistentFlags()
	f.StringVar(&e.Server, "server", "", "server URL, e.g. https://127.0.0.1:8443 (env RAMPART_SERVER)")
	f.StringVar(&e.CAFile, "ca-file", "", "CA that signed the server's certificate (env RAMPART_CA_FILE)")
	f.StringVar(&e.Token, "token", "", "API token (env RAMPART_TOKEN)")
	f.StringVar(&e.TokenFile, "token-file", "", "file holding the API token")
	f.StringVarP(&e.Output, "output", "o", "table", "output format of list and show verbs: table or json")
}

// Config is what `rampart login` saves.
type Config struct {
	Server string `json:"server"`
	CAFile string `json:"ca_file,omitempty"`
	Token  string `json:"token"`
}

// ConfigPath is where the login config lives: $RAMPART_CONFIG, else the user's config folder.
func (e *Env) ConfigPath() (string, error) {
	if p := e.Getenv("RAMPART_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("find the config folder: %w (set RAMPART_CONFIG)", err)
	}
	return filepath.Join(dir, "rampart", "config.json"), nil
}

// LoadConfig reads the login config; a missing file is an empty config.
func (e *Env) LoadConfig() (Config, error) {
	var c Config
	p, err := e.ConfigPath()
	if err != nil {
		return c, err
	}
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, err
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("config file %s is not valid JSON: %w", p, err)
	}
	return c, nil
}

// SaveConfig writes the login config with mode 0600, since it holds a token.
func (e *Env) SaveConfig(c Config) (string, error) {
	p, err := e.ConfigPath()
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return "", err
	}
	b, _ := json.MarshalIndent(c, "", "  ")
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return "", err
	}
	return p, os.Rename(tmp, p)
}

// Connection resolves server, CA file and token: flags first, then RAMPART_* variables, then
// the login config.
func (e *Env) Connection() (Config, error) {
	saved, err := e.LoadConfig()
	if err != nil {
		return Config{}, err
	}
	c := Config{Server: first(e.Server, e.Getenv("RAMPART_SERVER"), saved.Server),
		CAFile: first(e.CAFile, e.Getenv("RAMPART_CA_FILE"), saved.CAFile)}
	switch {
	case e.Token != "":
		c.Token = e.Token
	case e.TokenFile != "":
		b, err := os.ReadFile(e.TokenFile)
		if err != nil {
			return Config{}, fmt.Errorf("read token file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	default:
		c.Token = first(e.Getenv("RAMPART_TOKEN"), saved.Token)
	}
	if c.Server == "" {
		return Config{}, errors.New("no server given: pass --server, set RAMPART_SERVER, or run rampart login")
	}
	if u, err := url.Parse(c.Server); err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		host := strings.TrimPrefix(strings.TrimPrefix(c.Server, "//"), "https:")
		return Config{}, public.Errorf(public.Invalid, "server %q is not a URL: write it as https://%s", c.Server, strings.TrimLeft(host, "/"))
	}
	return c, nil
}

// Client builds an API client from the resolved connection.
func (e *Env) Client() (*client.Client, error) {
	c, err := e.Connection()
	if err != nil {
		return nil, err
	}
	if c.Token == "" {
		return nil, errors.New("no API token given: pass --token or --token-file, set RAMPART_TOKEN, or run rampart login")
	}
	opts := []client.Option{client.WithToken(c.Token)}
	if c.CAFile != "" {
		opts = append(opts, client.WithCAFile(c.CAFile))
	}
	return client.New(c.Server, opts...)
}

func first(vals ...string) string {
	for _, v := range vals {
		if v != "" {
			return v
		}
	}
	return ""
}

// JSON reports whether --output json was asked for; other values than table and json are an error.
func (e *Env) JSON() (bool, error) {
	switch e.Output {
	case "json":
		return true, nil
	case "table", "":
		return false, nil
	}
	return false, fmt.Errorf("--output %q is not table or json", e.Output)
}

// Print writes v as indented JSON with --output json, else calls table.
func (e *Env) Print(v any, table func(t *Table)) error {
	asJSON, err := e.JSON()
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(e.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	t := &Table{out: e.Stdout}
	t.w = t.newWriter()
	table(t)
	return t.w.Flush()
}

// PrintList is Print for a listing of n items: with no items, the table form is the sentence
// empty (what there is none of, and how to make one) rather than a bare header. The JSON form
// is unchanged.
func (e *Env) PrintList(v any, n int, empty string, table func(t *Table)) error {
	if asJSON, err := e.JSON(); err != nil || asJSON || n > 0 {
		return e.Print(v, table)
	}
	_, err := fmt.Fprintln(e.Stdout, empty)
	return err
}

// Table is an aligned text table, or several: each Section starts a table with columns of its own.
type Table struct {
	out  io.Writer
	w    *tabwriter.Writer
	rows int
}

func (t *Table) newWriter() *tabwriter.Writer { return tabwriter.NewWriter(t.out, 0, 0, 2, ' ', 0) }

// Section ends the current table and starts another after an empty line; its first Row is its
// header. Nothing is written when no row came before.
func (t *Table) Section() {
	t.w.Flush()
	t.w = t.newWriter()
	if t.rows > 0 {
		fmt.Fprintln(t.out)
	}
	t.rows = 0
}

// Line writes one line outside any column, such as a note under a table.
func (t *Table) Line(format string, args ...any) {
	t.w.Flush()
	fmt.Fprintf(t.out, format+"\n", args...)
	t.rows++
}

// Row writes one row; the first of a section is its header. An empty cell prints as "-".
func (t *Table) Row(cells ...any) {
	t.rows++
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.w, "\t")
		}
		s := fmt.Sprint(c)
		if s == "" {
			s = "-"
		}
		fmt.Fprint(t.w, s)
	}
	fmt.Fprintln(t.w)
}

// More writes a row that continues the one above: its empty cells stay blank rather than "-".
func (t *Table) More(cells ...any) {
	t.rows++
	for i, c := range cells {
		if i > 0 {
			fmt.Fprint(t.w, "\t")
		}
		fmt.Fprint(t.w, c)
	}
	fmt.Fprintln(t.w)
}

// When formats a time for tables; the zero time prints as "-".
func When(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.Local().Format("2006-01-02 15:04:05Z07:00")
}

// Passphrase returns the passphrase of offline key files: the first line of
// file when given, else the environment variable RAMPART_KEYS_PASSPHRASE.
func (e *Env) Passphrase(file string) ([]byte, error) {
	if file != "" {
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("read passphrase file: %w", err)
		}
		line, _, _ := strings.Cut(string(b), "\n")
		line = strings.TrimRight(line, "\r")
		if line == "" {
			return nil, errors.New("the passphrase file is empty")
		}
		return []byte(line), nil
	}
	if p := e.Getenv("RAMPART_KEYS_PASSPHRASE"); p != "" {
		return []byte(p), nil
	}
	return nil, errors.New("no passphrase given: use --passphrase-file FILE or set RAMPART_KEYS_PASSPHRASE")
}
