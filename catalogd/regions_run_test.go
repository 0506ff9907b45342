package catalogd

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestRegionFlags(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "regions.yaml")
	doc := `regions:
  - name: a
    edges: [http://127.0.0.1:1]
    purge: [http://127.0.0.1:2]
    blob: ` + filepath.Join(dir, "a") + `
  - name: b
    edges: [http://127.0.0.1:3]
    purge: [http://127.0.0.1:4, http://127.0.0.1:2]
    blob: ` + filepath.Join(dir, "b") + `
`
	if err := os.WriteFile(file, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := parseFlags([]string{"-regions", file, "-purge-edges", "http://127.0.0.1:9/", "-region-header", "X-Region", "-trusted-proxies", "10.0.0.0/8"}, noEnv, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.blobURL != filepath.Join(dir, "a") {
		t.Errorf("blob = %s, want the home region's", cfg.blobURL)
	}
	if want := []string{"http://127.0.0.1:9", "http://127.0.0.1:2", "http://127.0.0.1:4"}; !slices.Equal(cfg.purgeEdges, want) {
		t.Errorf("purge edges = %v, want %v (every region's, once)", cfg.purgeEdges, want)
	}
	if ch := cfg.server.Regions; ch == nil || ch.Header != "X-Region" || len(ch.Trusted) != 1 {
		t.Errorf("chooser = %+v", ch)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-regions", filepath.Join(dir, "none.yaml")}, "-regions"},
		{[]string{"-regions", file, "-region-header", "X-Region"}, "needs -trusted-proxies"},
		{[]string{"-region-header", "X-Region", "-trusted-proxies", "10.0.0.0/8"}, "needs -regions"},
		{[]string{"-regions", file, "-trusted-proxies", "nonsense"}, "-trusted-proxies"},
		{[]string{"-regions", file, "-blob", filepath.Join(dir, "b")}, "not the home region's"},
	} {
		_, err := parseFlags(c.args, noEnv, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("parseFlags(%q) = %v, want an error containing %q", c.args, err, c.want)
		}
	}
}
