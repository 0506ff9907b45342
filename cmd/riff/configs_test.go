package main

import (
	"encoding/json"
	"io/fs"
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
			_, out, errOut := riff(t, name, "--help")
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

// TestGrafanaDashboard checks that configs/grafana-dashboard.json is a
// dashboard whose every query names metrics the code exports, so renaming
// a metric cannot silently blank a panel.
func TestGrafanaDashboard(t *testing.T) {
	data, err := os.ReadFile("../../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Title  string `json:"title"`
		Panels []struct {
			Type    string `json:"type"`
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &dash); err != nil {
		t.Fatalf("dashboard: %v", err)
	}
	// Every metric name the Go code (not its tests) mentions.
	var source strings.Builder
	err = filepath.WalkDir("../..", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "node_modules" || d.Name() == ".git") {
			return filepath.SkipDir
		}
		if strings.HasSuffix(path, ".go") && !strings.HasSuffix(path, "_test.go") {
			b, err := os.ReadFile(path)
			source.Write(b)
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	metricRE := regexp.MustCompile(`riff_[a-z0-9_]+`)
	queries := 0
	for _, p := range dash.Panels {
		if p.Type != "row" && len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			queries++
			names := metricRE.FindAllString(tg.Expr, -1)
			if len(names) == 0 {
				t.Errorf("panel %q: query %q names no riff metric", p.Title, tg.Expr)
			}
			for _, n := range names {
				base := n
				for _, suffix := range []string{"_bucket", "_sum", "_count"} {
					if b, ok := strings.CutSuffix(n, suffix); ok && strings.HasSuffix(b, "_seconds") {
						base = b
					}
				}
				if !strings.Contains(source.String(), base) {
					t.Errorf("panel %q: metric %s is not exported by any package", p.Title, n)
				}
			}
		}
	}
	if dash.Title == "" || queries < 10 {
		t.Errorf("dashboard %q with %d queries; want a titled dashboard covering catalogd, ingest, purge and edge", dash.Title, queries)
	}
}
