package dev

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"riff/internal/testrun"
)

// TestPrometheusScrapesEveryDaemon loads configs/prometheus.yml and its
// alert rules into Debian's Prometheus, pointed at a running riff dev, and
// checks what an operator's first look depends on: every daemon is up, every
// query of configs/grafana-dashboard.json returns series, and every alert
// rule evaluates without error.
func TestPrometheusScrapesEveryDaemon(t *testing.T) {
	testrun.RequireFFmpeg(t)
	prometheus := testrun.RequireTool(t, "prometheus")
	promtool := testrun.RequireTool(t, "promtool")
	if out, err := exec.Command(promtool, "check", "config", "../configs/prometheus.yml").CombinedOutput(); err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}

	data := t.TempDir()
	api, origin, edge, admin := testrun.FreeAddr(t), testrun.FreeAddr(t), testrun.FreeAddr(t), testrun.FreeAddr(t)
	runDev(t, "-data", data, "-catalogd-listen", api, "-origin-listen", origin, "-edge-listen", edge,
		"-edge-admin-listen", admin, "-demo-songs", "1", "-demo-length", "4s", "-ready-timeout", "60s")

	// Traffic that makes every panel's series exist: a play through the
	// edge (misses, origin reads, then hits), a refused token, a 404.
	login := postJSON(t, "http://"+api+"/auth/login", fmt.Sprintf(`{"email":%q,"password":%q}`, demoEmail, demoPassword))
	token, _ := login["access_token"].(string)
	song := getJSON(t, "http://"+api+"/songs/1", token)
	hls, _ := song["hls_url"].(string)
	for range 2 {
		if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-i", hls, "-f", "null", "-").CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %s: %v %s", hls, err, out)
		}
	}
	for _, u := range []string{"http://" + edge + "/t/not-a-token/x.m3u8", "http://" + api + "/no-such-route"} {
		if res, err := http.Get(u); err == nil {
			res.Body.Close()
		}
	}

	promAddr := testrun.FreeAddr(t)
	cfg := prometheusConfig(t, map[string]string{"riff-catalogd": api, "riff-origin": origin, "riff-edge": admin})
	ctx, cancel := context.WithCancel(context.Background())
	logs := &testrun.LockedBuffer{}
	cmd := exec.CommandContext(ctx, prometheus, "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(t.TempDir(), "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); cmd.Wait() })
	query := func(q string) ([]promSample, error) { return promQuery(promAddr, q) }

	// Every daemon up.
	eventually(t, logs, "every daemon scraped and up", func() error {
		up, err := query(`up`)
		if err != nil {
			return err
		}
		var jobs []string
		for _, s := range up {
			if s.Value == "1" {
				jobs = append(jobs, s.Metric["job"])
			}
		}
		slices.Sort(jobs)
		if !slices.Equal(jobs, []string{"riff-catalogd", "riff-edge", "riff-origin"}) {
			return fmt.Errorf("up=1 for %v", jobs)
		}
		return nil
	})

	// Every dashboard query returns at least one series.
	exprs := dashboardQueries(t)
	eventually(t, logs, "every dashboard query returns series", func() error {
		var empty []string
		for _, e := range exprs {
			res, err := query(e)
			if err != nil {
				return fmt.Errorf("%s: %w", e, err)
			}
			if len(res) == 0 {
				empty = append(empty, e)
			}
		}
		if len(empty) > 0 {
			return fmt.Errorf("%d of %d queries return nothing:\n%s", len(empty), len(exprs), strings.Join(empty, "\n"))
		}
		return nil
	})

	// Every alert rule loaded and evaluated without error.
	eventually(t, logs, "every alert rule evaluated", func() error {
		var rules struct {
			Data struct {
				Groups []struct {
					Rules []struct {
						Name, Health, LastError string
						LastEvaluation          time.Time
					}
				}
			}
		}
		if err := promGet(promAddr, "/api/v1/rules", &rules); err != nil {
			return err
		}
		n := 0
		for _, g := range rules.Data.Groups {
			for _, r := range g.Rules {
				n++
				if r.Health != "ok" || r.LastEvaluation.IsZero() {
					return fmt.Errorf("rule %s: health %q %s, evaluated %v", r.Name, r.Health, r.LastError, r.LastEvaluation)
				}
			}
		}
		if n < 11 {
			return fmt.Errorf("%d rules loaded, want the 11 of configs/prometheus-rules.yml", n)
		}
		return nil
	})
}

// TestAlertRules runs the unit tests of every alert rule
// (configs/prometheus-rules.test.yml) with promtool: each alert fires on the
// situation it is for and stays quiet on its look-alike.
func TestAlertRules(t *testing.T) {
	promtool := testrun.RequireTool(t, "promtool")
	out, err := exec.Command(promtool, "test", "rules", "../configs/prometheus-rules.test.yml").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SUCCESS") {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	// Every alert has a test and a runbook section.
	rules, err := os.ReadFile("../configs/prometheus-rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests, _ := os.ReadFile("../configs/prometheus-rules.test.yml")
	runbook, _ := os.ReadFile("../docs/operations.md")
	var doc struct {
		Groups []struct {
			Rules []struct{ Alert string }
		}
	}
	if err := yaml.Unmarshal(rules, &doc); err != nil {
		t.Fatal(err)
	}
	for _, g := range doc.Groups {
		for _, r := range g.Rules {
			if !strings.Contains(string(tests), "alertname: "+r.Alert+"\n") {
				t.Errorf("alert %s has no test in configs/prometheus-rules.test.yml", r.Alert)
			}
			if !strings.Contains(string(runbook), "#### "+r.Alert+"\n") {
				t.Errorf("alert %s has no runbook section (#### %s) in docs/operations.md", r.Alert, r.Alert)
			}
		}
	}
}

// prometheusConfig writes configs/prometheus.yml with each job's targets
// replaced by targets[job], a 1 s scrape and evaluation interval, and the
// rule file's absolute path.
func prometheusConfig(t *testing.T, targets map[string]string) string {
	t.Helper()
	b, err := os.ReadFile("../configs/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	global := cfg["global"].(map[string]any)
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	var rules []any
	for _, f := range cfg["rule_files"].([]any) {
		abs, err := filepath.Abs(filepath.Join("../configs", f.(string)))
		if err != nil {
			t.Fatal(err)
		}
		rules = append(rules, abs)
	}
	cfg["rule_files"] = rules
	for _, sc := range cfg["scrape_configs"].([]any) {
		sc := sc.(map[string]any)
		job := sc["job_name"].(string)
		addr, ok := targets[job]
		if !ok {
			t.Fatalf("configs/prometheus.yml scrapes job %q, which riff dev does not run", job)
		}
		sc["static_configs"] = []any{map[string]any{"targets": []any{addr}}}
		delete(targets, job)
	}
	if len(targets) > 0 {
		t.Fatalf("configs/prometheus.yml does not scrape %v", targets)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// dashboardQueries returns every query of configs/grafana-dashboard.json.
func dashboardQueries(t *testing.T) []string {
	t.Helper()
	b, err := os.ReadFile("../configs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Panels []struct {
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			exprs = append(exprs, tg.Expr)
		}
	}
	if len(exprs) < 10 {
		t.Fatalf("dashboard has %d queries", len(exprs))
	}
	return exprs
}

// promSample is one series of an instant query's vector result.
type promSample struct {
	Metric map[string]string
	Value  string
}

// promQuery runs an instant query through Prometheus' HTTP API.
func promQuery(addr, q string) ([]promSample, error) {
	var res struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  [2]any
			}
		}
	}
	if err := promGet(addr, "/api/v1/query?query="+url.QueryEscape(q), &res); err != nil {
		return nil, err
	}
	if res.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", q, res.Error)
	}
	out := make([]promSample, len(res.Data.Result))
	for i, r := range res.Data.Result {
		v, _ := r.Value[1].(string)
		out[i] = promSample{r.Metric, v}
	}
	return out, nil
}

func promGet(addr, path string, v any) error {
	res, err := http.Get("http://" + addr + path)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("GET %s = %d %.200s: %w", path, res.StatusCode, b, err)
	}
	return nil
}

// eventually retries check for up to a minute (Prometheus scrapes and
// evaluates every second here) and fails with its last error and
// Prometheus' log.
func eventually(t *testing.T, logs *testrun.LockedBuffer, what string, check func() error) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v\nprometheus log:\n%s", what, err, logs)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
