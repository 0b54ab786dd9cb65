package clienv

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/rampartsec/rampart/client"
	"github.com/rampartsec/rampart/internal/public"
)

// Execute runs root with its arguments already set, prints a failure as one line on stderr and
// returns the process's exit code: 0, or 1 for any error (a mistyped verb included).
func Execute(ctx context.Context, root *cobra.Command, stderr io.Writer) int {
	strictGroups(root)
	if err := root.ExecuteContext(ctx); err != nil {
		fmt.Fprintf(stderr, "%s: %s\n", root.Name(), Message(err))
		return 1
	}
	return 0
}

// Message is the one sentence the user sees for err: the public sentence made where the error
// was made when it carries one, else the server's answer with its status, else the error's text.
func Message(err error) string {
	if msg, ok := public.Message(err); ok {
		return msg
	}
	if e, ok := errors.AsType[*client.Error](err); ok {
		return fmt.Sprintf("%s (HTTP %d)", err.Error(), e.Status)
	}
	// The connection failed before the server could answer: say what to check.
	if u, ok := errors.AsType[*url.Error](err); ok {
		server := u.URL
		if p, err := url.Parse(u.URL); err == nil {
			server = p.Scheme + "://" + p.Host
		}
		var unknownCA x509.UnknownAuthorityError
		var hostname x509.HostnameError
		switch {
		case errors.As(err, &unknownCA):
			return fmt.Sprintf("cannot verify the certificate of %s: pass --ca-file with the CA that signed it (the server's DATA/service-ca.pem)", server)
		case errors.As(err, &hostname):
			var names []string
			if c := hostname.Certificate; c != nil {
				names = append(names, c.DNSNames...)
				for _, ip := range c.IPAddresses {
					names = append(names, ip.String())
				}
			}
			return fmt.Sprintf("the certificate of %s is not for %s; use a name it holds in --server: %s", server, hostname.Host, strings.Join(names, ", "))
		case errors.Is(err, syscall.ECONNREFUSED):
			return fmt.Sprintf("nothing answers at %s: is rampart server running there, and is --server right?", server)
		case u.Timeout():
			return fmt.Sprintf("%s did not answer in time; check --server and the network", server)
		}
	}
	return err.Error()
}

// strictGroups makes every noun (a command that only groups verbs) refuse an argument it does
// not know, as cobra does for the root: `rampart release lst` fails with "unknown command"
// instead of printing help and exiting 0. A noun with no verb still prints its help.
func strictGroups(cmd *cobra.Command) {
	for _, sub := range cmd.Commands() {
		strictGroups(sub)
	}
	if !cmd.HasSubCommands() || cmd.Runnable() {
		return
	}
	cmd.SuggestionsMinimumDistance = 2
	cmd.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) == 0 {
			return nil
		}
		msg := fmt.Sprintf("unknown command %q for %q", args[0], cmd.CommandPath())
		if s := cmd.SuggestionsFor(args[0]); len(s) > 0 {
			msg += "; did you mean " + strings.Join(s, " or ") + "?"
		}
		return public.Errorf(public.Invalid, "%s (see %s --help)", msg, cmd.CommandPath())
	}
	cmd.RunE = func(cmd *cobra.Command, args []string) error { return cmd.Help() }
}
