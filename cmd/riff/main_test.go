package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

func riff(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, func(string) string { return "" }, &out, &errb)
	return code, out.String(), errb.String()
}

func TestVersion(t *testing.T) {
	code, out, _ := riff(t, "version")
	if code != 0 || !strings.HasPrefix(out, "riff dev (commit ") || !strings.Contains(out, "go1.") {
		t.Errorf("riff version = %d %q", code, out)
	}
	if code2, out2, _ := riff(t, "--version"); code2 != 0 || out2 != out {
		t.Errorf("riff --version = %d %q, want same as riff version", code2, out2)
	}
}

func TestHelpListsEveryCommand(t *testing.T) {
	code, out, _ := riff(t, "--help")
	if code != 0 {
		t.Fatalf("riff --help exit %d", code)
	}
	for _, c := range commands() {
		if !strings.Contains(out, "  "+c.name+" ") {
			t.Errorf("usage lacks %q:\n%s", c.name, out)
		}
	}
}

func TestUsageErrors(t *testing.T) {
	if code, _, errOut := riff(t); code != 2 || !strings.Contains(errOut, "Usage: riff") {
		t.Errorf("riff (no args) = %d %q", code, errOut)
	}
	if code, _, errOut := riff(t, "fly"); code != 2 || !strings.Contains(errOut, `unknown command "fly"`) {
		t.Errorf("riff fly = %d %q", code, errOut)
	}
}

func TestEveryCommandHasHelp(t *testing.T) {
	for _, c := range commands() {
		code, out, errOut := riff(t, c.name, "--help")
		if code != 0 {
			t.Errorf("riff %s --help = exit %d: %s", c.name, code, errOut)
			continue
		}
		if c.name != "version" && !strings.Contains(out+errOut, "-") {
			t.Errorf("riff %s --help printed no flags: %q", c.name, out+errOut)
		}
	}
}
