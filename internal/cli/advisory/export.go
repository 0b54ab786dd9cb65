package advisory

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/advisory"
	"github.com/rampartsec/rampart/internal/cli/clienv"
	"github.com/rampartsec/rampart/internal/cli/report"
)

func newExport(env *clienv.Env) *cobra.Command {
	var id, out string
	var req client.AdvisoryRequest
	cmd := &cobra.Command{
		Use:   "export --report ID --format csaf|openvex [--publisher NAME] [--namespace URL] [--out FILE|DIR]",
		Short: "Write the CSAF 2.0 advisory or the OpenVEX document of a fixed report",
		Long: `Write the CSAF 2.0 advisory or the OpenVEX document of a fixed report.

With --out naming a folder, the file inside it takes the name CSAF 2.0 gives it: the
tracking ID in lower case, other characters than a-z, 0-9, + and - replaced by _, and
.json (rampart-edge-challenge-1.json); the OpenVEX document ends in .openvex.json.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := report.ParseNumber(id)
			if err != nil {
				return err
			}
			conn, err := env.Connection()
			if err != nil {
				return err
			}
			if req.Namespace == "" {
				req.Namespace = conn.Server // the publisher's address defaults to this server's
			}
			c, err := env.Client()
			if err != nil {
				return err
			}
			doc, err := c.ExportAdvisory(cmd.Context(), n, req)
			if err != nil {
				return err
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, doc, "", "  "); err != nil {
				return fmt.Errorf("the server sent an advisory that is not JSON: %w", err)
			}
			pretty.WriteByte('\n')
			if out == "" || out == "-" {
				_, err := env.Stdout.Write(pretty.Bytes())
				return err
			}
			if fi, err := os.Stat(out); (err == nil && fi.IsDir()) || strings.HasSuffix(out, string(filepath.Separator)) {
				name, err := advisory.DocumentFileName(doc)
				if err != nil {
					return fmt.Errorf("the server sent an advisory without a tracking ID: %w", err)
				}
				out = filepath.Join(out, name)
			}
			if err := os.WriteFile(out, pretty.Bytes(), 0o644); err != nil {
				return fmt.Errorf("write %s: %w", out, err)
			}
			fmt.Fprintf(env.Stderr, "wrote %s\n", out)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&id, "report", "", "the report's ID")
	f.StringVar(&req.Format, "format", "csaf", "csaf (CSAF 2.0 security advisory) or openvex")
	f.StringVar(&req.Publisher, "publisher", "", "publisher name (default: the tenant's name)")
	f.StringVar(&req.Namespace, "namespace", "", "publisher's https address (default: the server URL)")
	f.StringVar(&out, "out", "", "write to this file, or into this folder under the standard's file name, instead of standard output")
	cmd.MarkFlagRequired("report")
	return cmd
}
