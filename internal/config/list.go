package config

import "strings"

// SplitList splits a comma-separated flag value (-purge-edges, -query…)
// into its items, trimmed, dropping empty ones: "a, b,,c" is [a b c], ""
// is nil.
func SplitList(s string) []string {
	var items []string
	for item := range strings.SplitSeq(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}
