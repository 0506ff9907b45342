// Command mint prints playtokens for the edge benchmark (bench/edge/run.sh):
// one line per prefix, signed with a key written by `riff keygen`.
//
//	go run ./bench/edge/mint -key DIR/signing.key -ttl 1h artists/1/albums/1/songs/1/ ...
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"riff/internal/playtoken"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mint:", err)
		os.Exit(1)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mint", flag.ContinueOnError)
	fs.SetOutput(stderr)
	key := fs.String("key", "", "signing key `file` from riff keygen (required)")
	typ := fs.String("type", "play", "token type: play or purge")
	mbr := fs.Int("mbr", 0, "bitrate ceiling in kbps (0: none)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	sub := fs.String("sub", "bench", "subject")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *key == "" || fs.NArg() == 0 {
		return errors.New("usage: mint -key FILE [-type play|purge] [-mbr KBPS] [-ttl D] PREFIX")
	}
	signer, err := playtoken.LoadSigner(*key, time.Now)
	if err != nil {
		return err
	}
	for _, prefix := range fs.Args() {
		tok, err := signer.Mint(playtoken.Claims{Type: playtoken.Type(*typ), Subject: *sub, Prefix: prefix, MaxKbps: *mbr}, *ttl)
		if err != nil {
			return err
		}
		fmt.Fprintln(stdout, tok)
	}
	return nil
}
