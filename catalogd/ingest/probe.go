package ingest

import (
	"encoding/json"

	"riff/packager"
)

// EncodeProbe is how an upload's probe is kept with it
// (store.NewUpload.Probe), for its packaging job: JSON.
func EncodeProbe(pr *packager.Probe) string {
	if pr == nil {
		return ""
	}
	b, err := json.Marshal(pr)
	if err != nil {
		return ""
	}
	return string(b)
}

// DecodeProbe reads what EncodeProbe wrote. An empty or unreadable value
// gives nil: the job then probes the original itself (packager checks a
// probe it is handed before using it).
func DecodeProbe(s string) (*packager.Probe, bool) {
	if s == "" {
		return nil, false
	}
	var pr packager.Probe
	if err := json.Unmarshal([]byte(s), &pr); err != nil {
		return nil, false
	}
	return &pr, true
}
