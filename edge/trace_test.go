package edge

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"riff/internal/testrun"
)

// TestTraceSpansEdgeAndOrigin: with tracing on, a MISS is one trace from
// the edge's request span (token verification, the coalesced fill, the
// origin fetch) into the origin's request span and its blob read, joined
// by the traceparent the edge sends; the following HIT is a trace of its
// own that never reaches the origin; the token appears in no span.
func TestTraceSpansEdgeAndOrigin(t *testing.T) {
	rcv := testrun.NewOTLPReceiver(t)
	h := newHarness(t, harnessOptions{traces: rcv})
	key := songA + "aac_128.mp4"
	token := h.play(songA, 0)
	want := h.direct("GET", key, "Range", "bytes=0-99").body
	for i, cache := range []string{"MISS", "HIT"} {
		r := h.do("GET", h.object(token, key), "Range", "bytes=0-99")
		if r.status != 206 || !bytes.Equal(r.body, want) || r.get("X-Cache") != cache {
			t.Fatalf("request %d: %d X-Cache %s, want 206 %s with the origin's bytes", i, r.status, r.get("X-Cache"), cache)
		}
	}
	for _, stop := range h.stopTracing {
		if err := stop(context.Background()); err != nil {
			t.Fatal(err)
		}
	}

	spans := rcv.Spans()
	byID := map[string]testrun.Span{}
	var servers []testrun.Span
	for _, s := range spans {
		byID[s.SpanID] = s
		if strings.Contains(s.Name, token) || strings.Contains(s.Attrs["http.route"], token) {
			t.Errorf("span %q carries the playback token", s.Name)
		}
		if s.Service == "riff-edge" && s.Kind == "SPAN_KIND_SERVER" {
			servers = append(servers, s)
		}
	}
	if len(servers) != 2 {
		t.Fatalf("%d edge request spans, want 2 (MISS, HIT): %+v", len(servers), spans)
	}
	miss, hit := servers[0], servers[1]
	if miss.Attrs["cache.status"] != "MISS" {
		miss, hit = hit, miss
	}
	if miss.Attrs["cache.status"] != "MISS" || hit.Attrs["cache.status"] != "HIT" || miss.TraceID == hit.TraceID {
		t.Fatalf("edge spans %+v and %+v, want a MISS and a HIT in two traces", miss, hit)
	}
	// The MISS: parent chain from the origin's blob read up to the edge's
	// request span.
	chain := func(s testrun.Span) []string {
		var names []string
		for ; s.SpanID != ""; s = byID[s.ParentID] {
			names = append(names, s.Service+":"+s.Name)
		}
		return names
	}
	var blobRead testrun.Span
	for _, s := range spans {
		if s.Service == "riff-origin" && s.Name == "blob get" && s.TraceID == miss.TraceID {
			blobRead = s
		}
	}
	got := strings.Join(chain(blobRead), " < ")
	wantChain := "riff-origin:blob get < riff-origin:GET /" + key + " < riff-edge:origin fetch < riff-edge:coalesced fill < riff-edge:GET /t/-/" + key
	if got != wantChain || blobRead.TraceID != miss.TraceID {
		t.Errorf("the MISS's spans:\n got  %s\n want %s", got, wantChain)
	}
	verified := 0
	for _, s := range spans {
		if s.Name == "token verify" && (s.ParentID == miss.SpanID || s.ParentID == hit.SpanID) {
			verified++
		}
		if s.TraceID == hit.TraceID && s.Service == "riff-origin" {
			t.Errorf("the HIT's trace reached the origin: %+v", s)
		}
	}
	if verified != 2 {
		t.Errorf("%d token verification spans under the two requests, want 2", verified)
	}
}
