package catalogd

import (
	"net/http"
	"strings"
	"testing"
)

func TestBadBodies(t *testing.T) {
	e := newEnv(t)
	u := e.register("ann@example.com", "Ann")
	huge := `{"name":"` + strings.Repeat("x", 70<<10) + `"}`
	for _, tc := range []struct {
		name        string
		body        any
		contentType string
		status      int
		code, field string
	}{
		{"malformed", `{"name": "x"`, "", 400, "malformed_json", ""},
		{"not json", `name=x`, "", 400, "malformed_json", ""},
		{"array", `["x"]`, "", 400, "malformed_json", ""},
		{"string", `"x"`, "", 400, "malformed_json", ""},
		{"null", `null`, "", 400, "required", "name"},
		{"empty", ``, "", 400, "empty_body", ""},
		{"whitespace", "  \n", "", 400, "empty_body", ""},
		{"trailing data", `{"name":"x"} {"name":"y"}`, "", 400, "malformed_json", ""},
		{"trailing garbage", `{"name":"x"}garbage`, "", 400, "malformed_json", ""},
		{"unknown field", `{"name":"x","owner_user_id":1}`, "", 400, "unknown_field", "owner_user_id"},
		{"wrong type", `{"name":["x"]}`, "", 400, "invalid_type", "name"},
		{"wrong type number", `{"name":"x","bio":7}`, "", 400, "invalid_type", "bio"},
		{"invalid utf-8", []byte("{\"name\":\"\xff\xfe\"}"), "", 400, "invalid_utf8", ""},
		{"over-long name", `{"name":"` + strings.Repeat("ñ", 201) + `"}`, "", 400, "too_long", "name"},
		{"over-long bio", `{"name":"x","bio":"` + strings.Repeat("b", 4001) + `"}`, "", 400, "too_long", "bio"},
		{"control char", `{"name":"a\u0007b"}`, "", 400, "invalid_characters", "name"},
		{"huge body", huge, "", 413, "body_too_large", ""},
		{"form content type", `{"name":"x"}`, "application/x-www-form-urlencoded", 415, "unsupported_media_type", ""},
		{"no content type", `{"name":"x"}`, "-", 415, "unsupported_media_type", ""},
		{"json with charset is fine", `{"name":"x"}`, "application/json; charset=utf-8", 201, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tc.contentType != "" && tc.contentType != "-" {
				hdr["Content-Type"] = tc.contentType
			}
			rq := request{method: "POST", path: "/artists", token: u.AccessToken, body: tc.body, header: hdr}
			var r response
			if tc.contentType == "-" {
				r = e.doRaw(rq)
			} else {
				r = e.do(rq)
			}
			wantStatus(t, r, tc.status, tc.code)
			if p := r.problem(); p.Field != tc.field {
				t.Errorf("field %q, want %q", p.Field, tc.field)
			}
		})
	}
}

// doRaw is do without a Content-Type header.
func (e *env) doRaw(rq request) response {
	e.t.Helper()
	rq.header = map[string]string{"Content-Type": ""}
	return e.do(rq)
}

func TestRoutingProblems(t *testing.T) {
	e := newEnv(t)
	r := e.get("/nope", "")
	wantStatus(t, r, http.StatusNotFound, "route_not_found")
	r = e.do(request{method: "POST", path: "/songs/1"})
	wantStatus(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	if allow := r.Header.Get("Allow"); !strings.Contains(allow, "GET") {
		t.Errorf("405 Allow = %q", allow)
	}
	r = e.do(request{method: "PUT", path: "/auth/login", body: "{}"})
	wantStatus(t, r, http.StatusMethodNotAllowed, "method_not_allowed")
	// Every answer carries a request id, problems include it.
	if r.Header.Get("X-Request-Id") == "" || r.problem().RequestID != r.Header.Get("X-Request-Id") {
		t.Errorf("request id %q vs problem %q", r.Header.Get("X-Request-Id"), r.problem().RequestID)
	}
	for _, p := range []string{"/healthz", "/readyz", "/metrics", "/openapi.json"} {
		wantStatus(t, e.get(p, ""), http.StatusOK, "")
	}
	if body := string(e.get("/metrics", "").body); !strings.Contains(body, `riff_errors_total{component="catalogd",kind="route_not_found"}`) {
		t.Error("error counter by code missing from /metrics")
	}
}

func TestInternalErrorsAreNotSent(t *testing.T) {
	e := newEnv(t)
	u := e.register("ann@example.com", "Ann")
	e.store.Close() // every query now fails
	r := e.get("/users/me", u.AccessToken)
	wantStatus(t, r, http.StatusInternalServerError, "internal")
	if strings.Contains(strings.ToLower(string(r.body)), "sql") || strings.Contains(string(r.body), "closed") {
		t.Errorf("internal error text sent: %s", r.body)
	}
	if !strings.Contains(e.logs.String(), "database is closed") {
		t.Error("internal error not logged")
	}
	if r := e.get("/readyz", ""); r.StatusCode != http.StatusServiceUnavailable { // obs's own format
		t.Errorf("/readyz with the database closed = %d", r.StatusCode)
	}
}
