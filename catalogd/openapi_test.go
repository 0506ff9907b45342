package catalogd

import (
	"bytes"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"riff/internal/testrun"
)

const docsCopy = "../docs/openapi.json"

// TestOpenAPIDocsCopy keeps docs/openapi.json equal to the embedded
// document (-update copies it).
func TestOpenAPIDocsCopy(t *testing.T) {
	if testrun.Update() {
		if err := os.WriteFile(docsCopy, openAPIDoc, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	docs, err := os.ReadFile(docsCopy)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(docs, openAPIDoc) {
		t.Error("docs/openapi.json differs from catalogd/openapi.json: run go test ./catalogd -run OpenAPIDocsCopy -update")
	}
}

// TestOpenAPIMatchesRoutes checks that every route is documented and every
// documented operation is routed.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPIDoc, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	e := newEnv(t)
	routed := []string{"GET /healthz", "GET /readyz", "GET /metrics"}
	for _, rt := range e.srv.routes() {
		routed = append(routed, rt.method+" "+rt.pattern)
	}
	slices.Sort(documented)
	slices.Sort(routed)
	for _, r := range routed {
		if !slices.Contains(documented, r) {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	for _, d := range documented {
		if !slices.Contains(routed, d) {
			t.Errorf("openapi.json documents %s, which is not routed", d)
		}
	}
	// Routes that need a token say so; public ones do not.
	for _, rt := range e.srv.routes() {
		var op struct {
			Security []map[string][]string `json:"security"`
		}
		json.Unmarshal(doc.Paths[rt.pattern][strings.ToLower(rt.method)], &op)
		hasBearer := slices.ContainsFunc(op.Security, func(m map[string][]string) bool { _, ok := m["bearerAuth"]; return ok })
		if (rt.auth != authNone) != hasBearer {
			t.Errorf("%s %s: auth mode %d but security %v", rt.method, rt.pattern, rt.auth, op.Security)
		}
	}
	// The served document is the embedded one.
	r := e.get("/openapi.json", "")
	if !bytes.Equal(r.body, openAPIDoc) {
		t.Error("GET /openapi.json differs from the embedded document")
	}
}
