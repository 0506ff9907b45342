package blob

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"riff/internal/s3server"
)

// The tests in this file run against a real S3 server (versitygw, see
// internal/s3server), where the ones in s3_test.go use gofakes3. A fake
// answers as its authors read S3; these check what a fake tends to get
// wrong.

// realS3 is one S3 server for a test; each store gets a bucket of its own.
type realS3 struct {
	srv     *s3server.Server
	buckets int
}

func newRealS3(t *testing.T) *realS3 {
	t.Helper()
	srv := s3server.Start(t)
	srv.SetEnv(t)
	return &realS3{srv: srv}
}

// newStore makes a bucket and a store of it whose requests go through tr.
func (r *realS3) newStore(t *testing.T, tr *transport) *S3 {
	t.Helper()
	r.buckets++
	bucket := fmt.Sprintf("riff-test-%d", r.buckets)
	r.srv.CreateBucket(t, bucket)
	return r.storeOf(t, bucket, tr)
}

// storeOf returns a store of bucket (which may not exist).
func (r *realS3) storeOf(t *testing.T, bucket string, tr *transport) *S3 {
	t.Helper()
	if tr == nil {
		tr = &transport{}
	}
	s, err := NewS3(t.Context(), bucket, S3Options{
		Region:     s3server.Region,
		Endpoint:   r.srv.Endpoint,
		PathStyle:  true,
		PartSize:   5 * MiB,
		HTTPClient: &http.Client{Transport: tr},
	})
	if err != nil {
		t.Fatalf("NewS3: %v", err)
	}
	return s
}

// transport counts the requests a store sends, by kind, and can act
// before one is sent. It is safe for concurrent use.
type transport struct {
	uploads, parts, lists atomic.Int64
	// before, if set, is called before each request is sent; a non-nil
	// error fails the request with it.
	before func(*http.Request) error
	base   http.RoundTripper
	once   sync.Once
}

func (tr *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	tr.once.Do(func() {
		if tr.base == nil {
			tr.base = http.DefaultTransport.(*http.Transport).Clone()
		}
	})
	q := req.URL.Query()
	switch {
	case req.Method == http.MethodPost && q.Has("uploads"):
		tr.uploads.Add(1)
	case req.Method == http.MethodPut && q.Has("partNumber"):
		tr.parts.Add(1)
	case req.Method == http.MethodGet && q.Get("list-type") == "2":
		tr.lists.Add(1)
	}
	if tr.before != nil {
		if err := tr.before(req); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	return tr.base.RoundTrip(req)
}

// TestS3Server is the conformance suite against the real server.
func TestS3Server(t *testing.T) {
	r := newRealS3(t)
	testStore(t, func(t *testing.T) backend {
		s := r.newStore(t, nil)
		return backend{Store: s, leftovers: func(t *testing.T) []string { return s3Leftovers(t, s) }}
	})
}

// multipartETag is S3's ETag of an object uploaded in parts of partSize:
// the MD5 of the parts' MD5s, a dash and the number of parts, quoted.
func multipartETag(data []byte, partSize int) string {
	var sums []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		sum := md5.Sum(data[off:min(off+partSize, len(data))])
		sums = append(sums, sum[:]...)
		n++
	}
	all := md5.Sum(sums)
	return fmt.Sprintf("%q", hex.EncodeToString(all[:])+"-"+fmt.Sprint(n))
}

// TestS3ServerETags: Put, Stat, Get and List give the same ETag, and it is
// S3's: the content's MD5 for one part, the MD5 of the parts' MD5s "-N" for
// a multipart upload (gofakes3 serves another one than it returned).
func TestS3ServerETags(t *testing.T) {
	r := newRealS3(t)
	tr := &transport{}
	s := r.newStore(t, tr)
	small := content(8, 1000)
	smallSum := md5.Sum(small)
	large := content(9, largeSize)
	for _, tc := range []struct {
		key   string
		data  []byte
		want  string
		parts int64
	}{
		{"a/small.mp4", small, `"` + hex.EncodeToString(smallSum[:]) + `"`, 0},
		{"a/large.flac", large, multipartETag(large, 5*MiB), 3},
	} {
		before := tr.parts.Load()
		put := mustPut(t, s, tc.key, tc.data, PutOptions{})
		if n := tr.parts.Load() - before; n != tc.parts {
			t.Errorf("Put(%q) of %d bytes sent %d parts, want %d", tc.key, len(tc.data), n, tc.parts)
		}
		st, err := s.Stat(t.Context(), tc.key)
		if err != nil {
			t.Fatal(err)
		}
		got, info := mustGet(t, s, tc.key, nil)
		_, rinfo := mustGet(t, s, tc.key, &Range{1, 10})
		var listed string
		for li, err := range s.List(t.Context(), tc.key) {
			if err != nil {
				t.Fatal(err)
			}
			listed = li.ETag
		}
		if !bytes.Equal(got, tc.data) {
			t.Errorf("Get(%q) returned other bytes", tc.key)
		}
		for _, e := range []struct{ what, etag string }{
			{"Put", put.ETag}, {"Stat", st.ETag}, {"Get", info.ETag}, {"Get(range)", rinfo.ETag}, {"List", listed},
		} {
			if e.etag != tc.want {
				t.Errorf("%s(%q).ETag = %s, want %s", e.what, tc.key, e.etag, tc.want)
			}
		}
	}
}

// TestS3ServerAbort: a Put cancelled in the middle of a multipart upload
// (parts already sent) aborts it: the server lists no unfinished upload,
// and the key does not exist.
func TestS3ServerAbort(t *testing.T) {
	r := newRealS3(t)
	for _, name := range []string{"cancel", "reader error"} {
		t.Run(name, func(t *testing.T) {
			tr := &transport{}
			s := r.newStore(t, tr)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			// Part 1 is sent while part 2 is read; the reader gives up
			// in part 2, once part 1 is stored.
			partSent := make(chan struct{})
			var sent sync.Once
			base := http.DefaultTransport.(*http.Transport).Clone()
			tr.base = roundTripFunc(func(req *http.Request) (*http.Response, error) {
				res, err := base.RoundTrip(req)
				if req.URL.Query().Get("partNumber") == "1" && err == nil && res.StatusCode == http.StatusOK {
					sent.Do(func() { close(partSent) })
				}
				return res, err
			})
			var body io.Reader = &waitReader{src: bytes.NewReader(content(10, largeSize)), at: 7 * MiB, wait: partSent}
			want := errBoom
			if name == "cancel" {
				body = &cancelReader{src: body, at: 8 * MiB, cancel: cancel}
				want = context.Canceled
			} else {
				body = &failReader{src: body, n: 8 * MiB}
			}
			if _, err := s.Put(ctx, "originals/1/u.wav", body, PutOptions{}); !errors.Is(err, want) {
				t.Fatalf("Put = %v, want %v", err, want)
			}
			if tr.uploads.Load() != 1 || tr.parts.Load() < 1 {
				t.Fatalf("Put sent %d CreateMultipartUpload and %d UploadPart; the test wants a started upload", tr.uploads.Load(), tr.parts.Load())
			}
			ups, err := r.srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{Bucket: aws.String(s.Bucket())})
			if err != nil {
				t.Fatal(err)
			}
			for _, u := range ups.Uploads {
				t.Errorf("unfinished upload %s of %s left after a failed Put", aws.ToString(u.UploadId), aws.ToString(u.Key))
			}
			if _, err := s.Stat(t.Context(), "originals/1/u.wav"); !errors.Is(err, ErrNotFound) {
				t.Errorf("Stat after failed Put = %v, want ErrNotFound", err)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(req *http.Request) (*http.Response, error) { return f(req) }

// waitReader reads src, but blocks the read that passes byte at until wait
// is closed.
type waitReader struct {
	src  io.Reader
	at   int
	n    int
	wait <-chan struct{}
}

func (r *waitReader) Read(p []byte) (int, error) {
	if r.n+len(p) > r.at {
		select {
		case <-r.wait:
		case <-time.After(30 * time.Second):
			return 0, errors.New("waitReader: nothing closed wait in 30s")
		}
	}
	n, err := r.src.Read(p)
	r.n += n
	return n, err
}

// TestS3ServerListPages: a listing longer than one page (S3 returns at most
// 1000 keys per request) follows the continuation tokens, in order, and
// stops early when the caller breaks.
func TestS3ServerListPages(t *testing.T) {
	r := newRealS3(t)
	tr := &transport{}
	s := r.newStore(t, tr)
	const n = 1234
	var keys []string
	for i := range n {
		keys = append(keys, fmt.Sprintf("many/%04d/x.mp4", i))
	}
	keys = append(keys, "manz", "man/y")
	var (
		wg   sync.WaitGroup
		next atomic.Int64
		errs = make(chan error, 8)
	)
	for range 8 {
		wg.Go(func() {
			for i := int(next.Add(1)) - 1; i < len(keys); i = int(next.Add(1)) - 1 {
				if _, err := s.Put(t.Context(), keys[i], strings.NewReader(keys[i]), PutOptions{}); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	before := tr.lists.Load()
	got := listKeys(t, s, "many/")
	if pages := tr.lists.Load() - before; pages < 2 {
		t.Errorf("List(many/) of %d keys took %d requests, want at least 2 pages", n, pages)
	}
	if !slices.Equal(got, keys[:n]) {
		t.Errorf("List(many/) = %d keys (first %q), want the %d in order", len(got), got[:min(3, len(got))], n)
	}
	all := listKeys(t, s, "")
	if want := slices.Sorted(slices.Values(keys)); !slices.Equal(all, want) {
		t.Errorf("List() = %d keys, want %d in order", len(all), len(want))
	}
	// Breaking out in the second page.
	seen := 0
	for info, err := range s.List(t.Context(), "many/") {
		if err != nil {
			t.Fatal(err)
		}
		if info.Key != keys[seen] || info.Size != int64(len(keys[seen])) {
			t.Fatalf("List item %d = %+v, want %s of %d bytes", seen, info, keys[seen], len(keys[seen]))
		}
		seen++
		if seen == 1100 {
			break
		}
	}
	if seen != 1100 {
		t.Errorf("List with break after 1100 yielded %d", seen)
	}
}

// TestS3ServerConcurrentLarge: concurrent multipart Puts of one key leave
// exactly one of the contents, with its ETag, and a reader alongside sees
// only whole objects.
func TestS3ServerConcurrentLarge(t *testing.T) {
	r := newRealS3(t)
	s := r.newStore(t, nil)
	const writers = 3
	key := "originals/2/big.flac"
	inputs := make([][]byte, writers)
	for i := range inputs {
		inputs[i] = content(uint64(20+i), largeSize+i)
	}
	which := func(data []byte) int {
		return slices.IndexFunc(inputs, func(in []byte) bool { return bytes.Equal(in, data) })
	}
	mustPut(t, s, key, inputs[0], PutOptions{})
	done := make(chan struct{})
	readerErr := make(chan error, 1)
	go func() {
		for {
			select {
			case <-done:
				readerErr <- nil
				return
			default:
			}
			got, _ := mustGetErr(t.Context(), s, key)
			if got.err != nil {
				readerErr <- got.err
				return
			}
			if which(got.data) < 0 {
				readerErr <- fmt.Errorf("read a mix of %d bytes", len(got.data))
				return
			}
		}
	}()
	var wg sync.WaitGroup
	infos := make([]Info, writers)
	errs := make([]error, writers)
	for i := range writers {
		wg.Go(func() { infos[i], errs[i] = s.Put(t.Context(), key, bytes.NewReader(inputs[i]), PutOptions{}) })
	}
	wg.Wait()
	close(done)
	if err := <-readerErr; err != nil {
		t.Errorf("concurrent reader: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Errorf("Put %d: %v", i, err)
		}
	}
	got, info := mustGet(t, s, key, nil)
	w := which(got)
	if w < 0 {
		t.Fatalf("after concurrent Puts Get = %d bytes, want one of the inputs", len(got))
	}
	if want := multipartETag(inputs[w], 5*MiB); info.ETag != want || infos[w].ETag != want {
		t.Errorf("winner %d: Get ETag %s, its Put said %s, want %s", w, info.ETag, infos[w].ETag, want)
	}
	if left := s3Leftovers(t, s); len(left) > 0 {
		t.Errorf("leftovers: %q", left)
	}
}

type getResult struct {
	data []byte
	err  error
}

// mustGetErr reads a whole object, returning the error instead of failing
// (for goroutines other than the test's).
func mustGetErr(ctx context.Context, s Store, key string) (getResult, Info) {
	rc, info, err := s.Get(ctx, key, nil)
	if err != nil {
		return getResult{err: err}, info
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	return getResult{data, err}, info
}

// TestS3ServerRestart: the server restarts under a running store. Pooled
// connections to the old process are dead, and a request made while it is
// down is refused; the SDK's retries carry both, and a multipart upload
// interrupted by the restart completes.
func TestS3ServerRestart(t *testing.T) {
	r := newRealS3(t)
	tr := &transport{}
	s := r.newStore(t, tr)
	data := content(30, 1000)
	mustPut(t, s, "a/x.mp4", data, PutOptions{})

	// Restarted between two requests: the next ones use the pool.
	if err := r.srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if got, _ := mustGet(t, s, "a/x.mp4", nil); !bytes.Equal(got, data) {
		t.Errorf("Get after restart returned other bytes")
	}

	// Down when a request is made: the first attempt is refused; the
	// server is back before the SDK's retry. Requests made while it
	// restarts wait (as if in flight), and retries go through here too.
	var restarts atomic.Int64
	restartOnce := func(match func(*http.Request) bool) func(*http.Request) error {
		var (
			once sync.Once
			down atomic.Bool
			back = make(chan struct{}) // closed when the restart is over
		)
		return func(req *http.Request) error {
			if !match(req) {
				if down.Load() {
					<-back
				}
				return nil
			}
			var err error
			once.Do(func() {
				down.Store(true)
				defer close(back)
				r.srv.Stop()
				var c net.Conn
				if c, err = net.Dial("tcp", r.srv.Addr()); err == nil {
					c.Close()
					err = errors.New("the stopped server accepted a connection")
					return
				}
				if !errors.Is(err, syscall.ECONNREFUSED) {
					err = fmt.Errorf("server down: want connection refused, got: %w", err)
					return
				}
				if rerr := r.srv.Restart(); rerr != nil {
					err = rerr
					return
				}
				restarts.Add(1)
			})
			return err
		}
	}
	tr.before = restartOnce(func(req *http.Request) bool { return req.Method == http.MethodHead })
	st, err := s.Stat(t.Context(), "a/x.mp4")
	if err != nil || st.Size != int64(len(data)) || restarts.Load() != 1 {
		t.Errorf("Stat across a restart = %+v, %v (restarts %d), want the object", st, err, restarts.Load())
	}

	// Down in the middle of a multipart upload: part 2 is refused once.
	restarts.Store(0)
	tr.before = restartOnce(func(req *http.Request) bool { return req.URL.Query().Get("partNumber") == "2" })
	large := content(31, largeSize)
	put := mustPut(t, s, "originals/3/u.flac", large, PutOptions{})
	tr.before = nil
	if restarts.Load() != 1 {
		t.Errorf("the multipart upload did not meet the restart")
	}
	got, info := mustGet(t, s, "originals/3/u.flac", nil)
	if !bytes.Equal(got, large) || info.ETag != put.ETag || put.ETag != multipartETag(large, 5*MiB) {
		t.Errorf("after a restart mid-upload: Get %d bytes, ETag %s; Put said %s; want the %d bytes put, %s",
			len(got), info.ETag, put.ETag, len(large), multipartETag(large, 5*MiB))
	}
	if left := s3Leftovers(t, s); len(left) > 0 {
		t.Errorf("leftovers: %q", left)
	}
}

// TestS3ServerErrors: a missing bucket and wrong credentials are errors
// that say so. Stat is the exception where HEAD, whose answer has no body,
// cannot tell: S3 answers 404 for a missing bucket, and versitygw 404 for
// an unknown access key (AWS: 403), so Stat says ErrNotFound there. That is
// why readiness checks use Check, never a Stat.
func TestS3ServerErrors(t *testing.T) {
	r := newRealS3(t)
	good := r.newStore(t, nil)
	mustPut(t, good, "a/x.mp4", []byte("x"), PutOptions{})
	for _, tc := range []struct {
		name, bucket, access, secret string
		// want: the error of every call but Stat names one of these.
		want         []string
		statNotFound bool
	}{
		{"missing bucket", "no-such-bucket", r.srv.AccessKey, r.srv.SecretKey, []string{"NoSuchBucket"}, true},
		{"wrong secret", good.Bucket(), r.srv.AccessKey, "wrong-secret", []string{"SignatureDoesNotMatch"}, false},
		// AWS says InvalidAccessKeyId; versitygw XAdminUserNotFound.
		{"unknown access key", good.Bucket(), "nobody", r.srv.SecretKey, []string{"InvalidAccessKeyId", "XAdminUserNotFound"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s3server.SetCredentials(t, tc.access, tc.secret)
			s := r.storeOf(t, tc.bucket, nil)
			names := func(err error) bool {
				return err != nil && slices.ContainsFunc(tc.want, func(w string) bool { return strings.Contains(err.Error(), w) })
			}
			_, err := s.Stat(t.Context(), "a/x.mp4")
			if err == nil || errors.Is(err, ErrNotFound) != tc.statNotFound {
				t.Errorf("Stat = %v, want an error (ErrNotFound: %v)", err, tc.statNotFound)
			}
			if _, err := s.Put(t.Context(), "a/y.mp4", strings.NewReader("y"), PutOptions{}); !names(err) {
				t.Errorf("Put = %v, want an error naming one of %q", err, tc.want)
			}
			if _, _, err := s.Get(t.Context(), "a/x.mp4", nil); !names(err) || errors.Is(err, ErrNotFound) {
				t.Errorf("Get = %v, want an error naming one of %q, not ErrNotFound", err, tc.want)
			}
			for _, err := range s.List(t.Context(), "a/") {
				if !names(err) {
					t.Errorf("List = %v, want an error naming one of %q", err, tc.want)
				}
			}
			if err := Check(t.Context(), s); !names(err) {
				t.Errorf("Check = %v, want an error naming one of %q", err, tc.want)
			}
		})
	}
	if err := Check(t.Context(), good); err != nil {
		t.Errorf("Check of a good store = %v", err)
	}
}
