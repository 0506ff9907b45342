package main

import (
	"io"
	"net"
	"net/http"
	"sync/atomic"
)

// otlpSink is the smallest OTLP/HTTP endpoint riff edge can export its
// spans to (-otlp-sink): it accepts POST /v1/traces, counts the exports
// and their bytes, and answers an empty ExportTraceServiceResponse (an
// empty protobuf message is zero bytes). It decodes nothing, so what it
// costs is the edge's export, not a collector's work; it runs in this
// process, on the generators' core, not on the server's.
type otlpSink struct {
	URL            string // http://127.0.0.1:PORT, for -otlp-endpoint
	exports, bytes atomic.Int64

	srv *http.Server
}

// startOTLPSink listens on a free loopback port.
func startOTLPSink() (*otlpSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &otlpSink{URL: "http://" + ln.Addr().String()}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/traces", func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		s.exports.Add(1)
		s.bytes.Add(n)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(http.StatusOK)
	})
	s.srv = &http.Server{Handler: mux}
	go s.srv.Serve(ln)
	return s, nil
}

// Close stops the sink.
func (s *otlpSink) Close() error { return s.srv.Close() }
