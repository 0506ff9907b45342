package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"riff/bench"
	"riff/catalogd"
	"riff/dev"
	"riff/edge"
	"riff/keygen"
	"riff/origin"
	"riff/packager"
)

// runFunc is the shape every component exports as Run.
type runFunc func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error

type command struct {
	name, summary string
	run           runFunc
}

// commands lists the subcommands in the order usage shows them.
func commands() []command {
	return []command{
		{"catalogd", "accounts, search, playlists, uploads API (net/http)", catalogd.Run},
		{"origin", "regional origin: serves packaged objects from the blob store", origin.Run},
		{"edge", "streaming edge: tokens, slice cache, coalescing, purge", edge.Run},
		{"package", "package an audio file into HLS/DASH/Ogg renditions", packager.Run},
		{"bench", "load generator that behaves like players, with reports and thresholds", bench.Run},
		{"dev", "all-in-one: catalogd + origin + edge on loopback with demo content", dev.Run},
		{"keygen", "make a token signing key and public key set", keygen.Run},
		{"version", "print the version", runVersion},
	}
}

// run dispatches args to a subcommand and returns the process exit code:
// 0 success or help, 1 failure, 2 usage error.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		usage(stdout)
		return 0
	case "-version", "--version":
		args = []string{"version"}
	}
	for _, c := range commands() {
		if c.name != args[0] {
			continue
		}
		err := c.run(ctx, args[1:], getenv, stdout, stderr)
		switch {
		case err == nil, errors.Is(err, flag.ErrHelp):
			return 0
		default:
			fmt.Fprintf(stderr, "riff %s: %v\n", c.name, err)
			return 1
		}
	}
	fmt.Fprintf(stderr, "riff: unknown command %q\n\n", args[0])
	usage(stderr)
	return 2
}

func usage(w io.Writer) {
	var b strings.Builder
	b.WriteString("Usage: riff <command> [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(&b, "  %-9s %s\n", c.name, c.summary)
	}
	b.WriteString("\nRun 'riff <command> --help' for the flags of a command.\n")
	io.WriteString(w, b.String())
}

func runVersion(_ context.Context, args []string, _ func(string) string, stdout, _ io.Writer) error {
	fs := flag.NewFlagSet("version", flag.ContinueOnError)
	fs.SetOutput(stdout)
	if err := fs.Parse(args); err != nil {
		return err
	}
	rev := "unknown"
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	fmt.Fprintf(stdout, "riff %s (commit %s, %s %s/%s)\n", version, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
