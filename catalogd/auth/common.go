package auth

import (
	_ "embed"
	"strings"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// commonPasswordList is the 1,000 most common passwords of the xato.net
// ten-million-password corpus, one per line, as published in SecLists
// (Passwords/Common-Credentials/xato-net-10-million-passwords-1000.txt,
// MIT licence). A longer list can replace the file as it is.
//
//go:embed common-passwords.txt
var commonPasswordList string

// commonKey is the form passwords are compared with the list in: NFKC,
// case folded, surrounding white space trimmed.
func commonKey(password string) string {
	return strings.TrimSpace(cases.Fold().String(norm.NFKC.String(password)))
}

// newCommonSet parses commonPasswordList.
func newCommonSet() map[string]struct{} {
	set := make(map[string]struct{}, 1024)
	for line := range strings.Lines(commonPasswordList) {
		if k := commonKey(line); k != "" {
			set[k] = struct{}{}
		}
	}
	return set
}

// Common reports whether password is one of the most common passwords
// (see commonPasswordList), whatever its case, width or surrounding white
// space: "Password1", "ＰＡＳＳＷＯＲＤ1" and "password1 " are all
// "password1".
func (p *Passwords) Common(password string) bool {
	_, ok := p.common[commonKey(password)]
	return ok
}
