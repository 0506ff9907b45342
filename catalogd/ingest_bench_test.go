package catalogd

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"riff/catalogd/auth"
	"riff/catalogd/store"
	"riff/internal/testrun"
	"riff/packager"
)

// BenchmarkUploadToPlayable measures, for a 3.5-minute stereo FLAC, the
// time from the start of POST /songs to GET /songs/{id} answering ready
// (upload, checks, queue, fetch, transcode, package, publish, commit), and
// reports next to it the wall time of the same six ffmpeg encodes run
// directly (same arguments and concurrency as the packager): the overhead
// of everything else is ingest-s/op minus ffmpeg-s/op. On a shared machine
// wall times move with other processes' load, so it also reports CPU time
// (user+system of this process and its children: ffmpeg, ffprobe, the
// HTTP client and server, the store), which load barely moves. Run with
//
//	go test ./catalogd -run '^$' -bench UploadToPlayable -benchtime 3x
func BenchmarkUploadToPlayable(b *testing.B) {
	e := newIngestEnv(b, func(c *Config, _ *auth.Argon2Params) { c.Workers = 1; c.JobPoll = 10 * time.Millisecond })
	e.setPackager(packager.New(packager.Config{Concurrency: 2, TempDir: b.TempDir()})) // the default ladder
	e.startJobs(b)
	f := e.fixture()
	dir := b.TempDir()
	src := filepath.Join(dir, "song.flac")
	chord := "aevalsrc='0.15*sin(2*PI*220*t)+0.12*sin(2*PI*277.18*t)+0.1*sin(2*PI*329.63*t)|0.15*sin(2*PI*220*t)+0.1*sin(2*PI*329.63*t)+0.08*sin(2*PI*440*t)':s=44100:d=210"
	testrun.FFmpeg(b, "-nostdin", "-v", "error", "-f", "lavfi", "-i", chord, "-c:a", "flac", src)
	var ingest, direct, ingestCPU, directCPU time.Duration
	b.ResetTimer()
	for i := range b.N {
		b.StopTimer()
		// Distinct bytes per upload (a tag), so it is not a duplicate.
		in := filepath.Join(dir, fmt.Sprintf("song%d.flac", i))
		testrun.FFmpeg(b, "-nostdin", "-v", "error", "-i", src, "-c", "copy", "-metadata", "comment="+strconv.Itoa(i), in)
		data, _ := os.ReadFile(in)
		c0 := cpuTime(b)
		direct += ffmpegLadder(b, in, dir)
		c1 := cpuTime(b)
		directCPU += c1 - c0
		b.StartTimer()

		start := time.Now()
		r := e.upload("POST", "/songs", f.owner.AccessToken, [][2]string{{"album_id", itoa(f.album.ID)}}, "song.flac", data)
		if r.StatusCode != http.StatusAccepted {
			b.Fatalf("upload: %d %s", r.StatusCode, r.body)
		}
		var v songView
		r.decode(b, &v)
		e.waitSongFast(b, v.ID, f.owner.AccessToken)
		ingest += time.Since(start)
		ingestCPU += cpuTime(b) - c1
	}
	b.ReportMetric(ingest.Seconds()/float64(b.N), "ingest-s/op")
	b.ReportMetric(direct.Seconds()/float64(b.N), "ffmpeg-s/op")
	b.ReportMetric(100*(ingest.Seconds()-direct.Seconds())/direct.Seconds(), "overhead-%")
	b.ReportMetric(directCPU.Seconds()/float64(b.N), "ffmpeg-cpu-s/op")
	b.ReportMetric(ingestCPU.Seconds()/float64(b.N), "ingest-cpu-s/op")
	b.ReportMetric(100*(ingestCPU.Seconds()-directCPU.Seconds())/directCPU.Seconds(), "cpu-overhead-%")
}

// cpuTime is the user+system CPU time of this process and its finished
// children so far.
func cpuTime(b *testing.B) time.Duration {
	var self, children syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &self); err != nil {
		b.Fatal(err)
	}
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children); err != nil {
		b.Fatal(err)
	}
	tv := func(t syscall.Timeval) time.Duration { return time.Duration(t.Nano()) }
	return tv(self.Utime) + tv(self.Stime) + tv(children.Utime) + tv(children.Stime)
}

// waitSongFast polls every 50 ms until the song is ready.
func (e *ingestEnv) waitSongFast(b *testing.B, id int64, token string) {
	for {
		var v songView
		r := e.get("/songs/"+itoa(id), token)
		r.decode(b, &v)
		if v.Status == store.StatusReady {
			return
		}
		if v.Status != store.StatusProcessing {
			b.Fatalf("song %d: %s", id, r.body)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ffmpegLadder runs the packager's six encodes of in directly, two at a
// time, most expensive first, and returns the wall time.
func ffmpegLadder(b *testing.B, in, dir string) time.Duration {
	type enc struct {
		codec, format, ext string
		kbps               int
	}
	var encs []enc
	for _, k := range []int{320, 128, 64} {
		encs = append(encs, enc{"aac", "mp4", "mp4", k})
	}
	for _, k := range []int{320, 128, 64} {
		encs = append(encs, enc{"libvorbis", "ogg", "ogg", k})
	}
	start := time.Now()
	sem := make(chan struct{}, 2)
	var wg sync.WaitGroup
	for _, en := range encs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			out := filepath.Join(dir, fmt.Sprintf("direct_%s_%d.%s", en.codec, en.kbps, en.ext))
			args := []string{"-nostdin", "-hide_banner", "-v", "error", "-nostats", "-xerror", "-f", "flac", "-i", "file:" + in,
				"-map", "0:a:0", "-vn", "-map_metadata", "-1", "-ac", "2", "-ar", "44100", "-b:a", strconv.Itoa(en.kbps * 1000),
				"-c:a", en.codec, "-f", en.format, "-y", out}
			if err := testrun.RunFFmpeg(args...); err != nil {
				b.Error(err)
			}
		})
	}
	wg.Wait()
	return time.Since(start)
}
