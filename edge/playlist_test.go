package edge

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Eyevinn/dash-mpd/mpd"
	"github.com/grafov/m3u8"

	"riff/internal/testrun"
)

func TestFilterMaster(t *testing.T) {
	tests := []struct {
		file string
		mbr  int
		kept int
		uris []string // variant URIs left, in order
	}{
		{"packager-master.m3u8", 64, 1, []string{"aac_64.m3u8"}},
		{"packager-master.m3u8", 128, 2, []string{"aac_64.m3u8", "aac_128.m3u8"}},
		{"packager-master.m3u8", 320, 3, []string{"aac_64.m3u8", "aac_128.m3u8", "aac_320.m3u8"}},
		{"packager-master.m3u8", 32, 0, nil},
		{"ffmpeg-master.m3u8", 128, 2, []string{"aac_64.m3u8", "aac_128.m3u8"}},
		{"crlf-master.m3u8", 128, 1, []string{"aac_64.m3u8"}},
		// No rung in the name: AVERAGE-BANDWIDTH, else BANDWIDTH, within 20%.
		{"audio-groups.m3u8", 128, 3, []string{"aac_64.m3u8?x=1", "variant-b.m3u8", "variant-c.m3u8"}},
		{"audio-groups.m3u8", 320, 4, []string{"aac_64.m3u8?x=1", "sub/aac_320.m3u8", "variant-b.m3u8", "variant-c.m3u8"}},
		{"audio-groups.m3u8", 100, 1, []string{"aac_64.m3u8?x=1"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/mbr%d", tt.file, tt.mbr), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata/playlists", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, kept := filterMaster(src, tt.mbr)
			if kept != tt.kept {
				t.Fatalf("kept = %d, want %d", kept, tt.kept)
			}
			if kept == 0 {
				return
			}
			testrun.Golden(t, fmt.Sprintf("playlists/golden/%s.mbr%d", tt.file, tt.mbr), got)
			p, typ, err := m3u8.DecodeFrom(bytes.NewReader(got), true)
			if err != nil || typ != m3u8.MASTER {
				t.Fatalf("filtered playlist does not decode as a master playlist: %v", err)
			}
			var uris []string
			for _, v := range p.(*m3u8.MasterPlaylist).Variants {
				uris = append(uris, v.URI)
			}
			if strings.Join(uris, " ") != strings.Join(tt.uris, " ") {
				t.Errorf("variants = %v, want %v", uris, tt.uris)
			}
			if bytes.Contains(got, []byte("_320")) != (tt.mbr >= 320) {
				t.Errorf("a 320 rendition is named in the mbr=%d playlist:\n%s", tt.mbr, got)
			}
		})
	}
}

func TestFilterMasterLeavesMediaPlaylists(t *testing.T) {
	src := []byte("#EXTM3U\n#EXT-X-TARGETDURATION:6\n#EXTINF:6,\naac_320.mp4\n#EXT-X-ENDLIST\n")
	if got, kept := filterMaster(src, 64); kept != -1 || !bytes.Equal(got, src) {
		t.Errorf("filterMaster(media playlist) = %q, %d; want it unchanged, -1", got, kept)
	}
}

func TestFilterMPD(t *testing.T) {
	tests := []struct {
		file string
		mbr  int
		kept int
		ids  []string
	}{
		{"packager-manifest.mpd", 64, 1, []string{"aac_64"}},
		{"packager-manifest.mpd", 128, 2, []string{"aac_64", "aac_128"}},
		{"packager-manifest.mpd", 320, 3, []string{"aac_64", "aac_128", "aac_320"}},
		{"packager-manifest.mpd", 48, 0, nil},
		{"ffmpeg-manifest.mpd", 128, 2, []string{"aac_64", "aac_128"}},
		// The second AdaptationSet loses both Representations and goes.
		{"two-sets.mpd", 128, 1, []string{"aac_64"}},
		{"two-sets.mpd", 640, 3, []string{"aac_64", "aac_320", "surround_640"}},
		{"two-sets.mpd", 1000, 4, []string{"aac_64", "aac_320", "surround_640", "r2"}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/mbr%d", tt.file, tt.mbr), func(t *testing.T) {
			src, err := os.ReadFile(filepath.Join("testdata/playlists", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			got, kept, err := filterMPD(src, tt.mbr)
			if err != nil || kept != tt.kept {
				t.Fatalf("kept = %d, %v; want %d", kept, err, tt.kept)
			}
			if kept == 0 {
				return
			}
			testrun.Golden(t, fmt.Sprintf("playlists/golden/%s.mbr%d", tt.file, tt.mbr), got)
			m, err := mpd.ReadFromString(string(got))
			if err != nil {
				t.Fatalf("filtered MPD does not parse: %v\n%s", err, got)
			}
			var ids []string
			for _, p := range m.Periods {
				for _, as := range p.AdaptationSets {
					if len(as.Representations) == 0 {
						t.Errorf("an empty AdaptationSet was left")
					}
					for _, r := range as.Representations {
						ids = append(ids, r.Id)
					}
				}
			}
			if strings.Join(ids, " ") != strings.Join(tt.ids, " ") {
				t.Errorf("representations = %v, want %v", ids, tt.ids)
			}
		})
	}
}

func TestFilterMPDRefusesMalformed(t *testing.T) {
	if _, _, err := filterMPD([]byte(`<MPD><Period><AdaptationSet></Period></MPD>`), 128); err == nil {
		t.Error("malformed MPD accepted")
	}
}

func FuzzFilterMaster(f *testing.F) {
	for _, name := range []string{"packager-master.m3u8", "audio-groups.m3u8", "crlf-master.m3u8"} {
		b, err := os.ReadFile(filepath.Join("testdata/playlists", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 128)
	}
	f.Fuzz(func(t *testing.T, src []byte, mbr int) {
		if mbr <= 0 {
			return
		}
		out, kept := filterMaster(src, mbr)
		if kept < 0 {
			if !bytes.Equal(out, src) {
				t.Fatal("non-master playlist changed")
			}
			return
		}
		if len(out) > len(src) {
			t.Fatal("filter added bytes")
		}
		if n := bytes.Count(out, tagStreamInf); n < kept {
			t.Fatalf("kept %d variants but %d STREAM-INF tags remain", kept, n)
		}
		// Filtering is idempotent.
		again, kept2 := filterMaster(out, mbr)
		if kept > 0 && (kept2 != kept || !bytes.Equal(again, out)) {
			t.Fatalf("second pass changed the playlist:\n%q\n%q", out, again)
		}
	})
}

func FuzzFilterMPD(f *testing.F) {
	for _, name := range []string{"packager-manifest.mpd", "ffmpeg-manifest.mpd", "two-sets.mpd"} {
		b, err := os.ReadFile(filepath.Join("testdata/playlists", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b, 128)
	}
	f.Fuzz(func(t *testing.T, src []byte, mbr int) {
		if mbr <= 0 {
			return
		}
		out, kept, err := filterMPD(src, mbr)
		if err != nil {
			return
		}
		if len(out) > len(src) || kept < 0 {
			t.Fatalf("out %d bytes from %d, kept %d", len(out), len(src), kept)
		}
		// What is left is still well-formed: only whole elements were cut.
		if _, _, err := filterMPD(out, mbr); err != nil {
			t.Fatalf("filtered MPD no longer parses: %v\n%q\n%q", err, src, out)
		}
	})
}
