package testrun

import (
	"errors"
	"flag"
	"strings"
	"testing"
)

// WantFlagError checks the error of a command's flag parsing (Run or
// parseFlags) as the flag tables state it: want "" means flag.ErrHelp (the
// answer to -h), anything else must appear in the error's text. call names
// the call in the failure message, e.g. fmt.Sprintf("parseFlags(%q)", args).
func WantFlagError(t testing.TB, call string, err error, want string) {
	t.Helper()
	if want == "" {
		if !errors.Is(err, flag.ErrHelp) {
			t.Errorf("%s = %v, want flag.ErrHelp", call, err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s = %v, want an error mentioning %q", call, err, want)
	}
}
