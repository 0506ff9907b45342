// Command riff is Riff's one binary: riff catalogd|origin|edge|package|bench|dev|keygen|version.
// It only picks the subcommand (commands.go) and calls its package's Run;
// flags, building and serving live in those packages, never here.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
