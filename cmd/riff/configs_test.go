package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestConfigExamples checks that every key in configs/{command}.yaml is a
// flag of that command, so the examples cannot drift from the code.
func TestConfigExamples(t *testing.T) {
	files, err := filepath.Glob("../../configs/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs found: %v", err)
	}
	flagRE := regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`)
	for _, file := range files {
		name := strings.TrimSuffix(filepath.Base(file), ".yaml")
		known := false
		for _, c := range commands() {
			known = known || c.name == name
		}
		if !known {
			continue // e.g. prometheus.yml is not a riff config
		}
		t.Run(name, func(t *testing.T) {
			code, out, errOut := riff(t, name, "--help")
			if code == 2 {
				t.Skipf("riff %s is not built yet", name)
			}
			flags := map[string]bool{}
			for _, m := range flagRE.FindAllStringSubmatch(out+errOut, -1) {
				flags[m[1]] = true
			}
			data, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var doc map[string]any
			if err := yaml.Unmarshal(data, &doc); err != nil {
				t.Fatalf("%s: %v", file, err)
			}
			if len(doc) == 0 {
				t.Fatalf("%s is empty", file)
			}
			for key := range doc {
				if !flags[key] {
					t.Errorf("%s: key %q is not a flag of riff %s", file, key, name)
				}
			}
		})
	}
}
