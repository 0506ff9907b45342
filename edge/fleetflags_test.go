package edge

import (
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"riff/internal/testrun"
)

// TestParseFleetFlags: -peers, -peer-self, -peer-secret, -peer-timeout
// and -prefetch, good and bad, without starting anything.
func TestParseFleetFlags(t *testing.T) {
	noEnv := func(string) string { return "" }
	const peers = "http://10.0.2.21:9082,http://10.0.2.22:9082"
	cfg, err := parseFlags([]string{"-keys", "k", "-admin-listen", "10.0.2.22:9082", "-peers", peers, "-peer-secret", "s", "-prefetch", "0"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.peers == nil || cfg.peers.Self != "http://10.0.2.22:9082" || !slices.Equal(cfg.peers.URLs, []string{"http://10.0.2.21:9082", "http://10.0.2.22:9082"}) || cfg.peers.Secret != "s" {
		t.Errorf("peers = %+v", cfg.peers)
	}
	if cfg.server.Prefetch != 0 {
		t.Errorf("-prefetch 0: Prefetch = %d", cfg.server.Prefetch)
	}
	if want := 5*time.Second + time.Second + 2*3*time.Second; cfg.server.WaitTimeout != want {
		t.Errorf("WaitTimeout = %v, want %v (an origin attempt, a second, two peer attempts)", cfg.server.WaitTimeout, want)
	}
	def, err := parseFlags([]string{"-keys", "k"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if def.peers != nil || def.server.Prefetch != 16 {
		t.Errorf("defaults: peers %+v, prefetch %d; want none and 16", def.peers, def.server.Prefetch)
	}
	secret, err := parseFlags([]string{"-keys", "k", "-admin-listen", "10.0.2.21:9082", "-peers", peers},
		func(k string) string { return map[string]string{"RIFF_EDGE_PEER_SECRET": "from-env"}[k] }, io.Discard)
	if err != nil || secret.peers.Secret != "from-env" {
		t.Errorf("secret from RIFF_EDGE_PEER_SECRET: %v, %+v", err, secret.peers)
	}
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"-peers", peers}, "-peer-secret"},
		{[]string{"-peer-secret", "s"}, "need -peers"},
		{[]string{"-peers", peers, "-peer-secret", "s"}, "not in the peer list"}, // admin 127.0.0.1:9082
		{[]string{"-peers", peers, "-peer-secret", "s", "-peer-self", "http://10.0.2.99:9082"}, "not in the peer list"},
		{[]string{"-peers", "http://10.0.2.21:9082,ftp://x", "-peer-secret", "s", "-peer-self", "http://10.0.2.21:9082"}, "want http(s)://host:port"},
		{[]string{"-peers", peers, "-peer-secret", "s", "-peer-self", "http://10.0.2.21:9082", "-peer-timeout", "0s"}, "-peer-timeout"},
		{[]string{"-prefetch", "-1"}, "-prefetch"},
	} {
		args := append([]string{"-keys", "k"}, tt.args...)
		_, err := parseFlags(args, noEnv, io.Discard)
		testrun.WantFlagError(t, fmt.Sprintf("parseFlags(%q)", args), err, tt.want)
	}
}
