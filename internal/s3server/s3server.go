// Package s3server runs a real S3-compatible server for tests: versitygw
// (github.com/versity/versitygw) with its posix backend, one process per
// Start, on a free loopback port, with generated credentials and its data in
// the test's temporary folder. Riff's S3 store, the origin and riff dev are
// tested against it as well as against the in-process fake, because a fake
// agrees with the code's idea of S3 and a real server does not have to.
//
// The server is not a dependency of Riff's module: build.sh (run by `make
// s3server`, and by `make test` before go test) builds the version pinned
// here with `go install` into a cache folder, once, and reuses it after
// that. Binary finds it there, or at $RIFF_S3_SERVER. When it is missing,
// tests that need it are skipped loudly on a developer's machine and fail
// when CI is set, as testrun.RequireTool does for ffmpeg.
//
// Only _test.go files import this package.
package s3server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"riff/internal/testrun"
)

// The server build.sh builds (it reads these two lines).
const (
	Package = "github.com/versity/versitygw/cmd/versitygw"
	Version = "v1.8.0"
)

// Region is the region the server is started with and the clients sign for.
const Region = "us-east-1"

// EnvBinary names the environment variable that may point at the server's
// binary (make test sets it to what build.sh built).
const EnvBinary = "RIFF_S3_SERVER"

// DefaultBinary returns where build.sh puts the server: the user's cache
// folder, riff/versitygw-VERSION/versitygw.
func DefaultBinary() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "riff", "versitygw-"+Version, "versitygw"), nil
}

// Binary returns the path of the server's binary: $RIFF_S3_SERVER, else
// DefaultBinary. When there is none, the test is skipped, loudly, on a
// developer's machine, and fails when the CI environment variable is set.
func Binary(t testing.TB) string {
	t.Helper()
	path := os.Getenv(EnvBinary)
	where := "$" + EnvBinary
	if path == "" {
		var err error
		if path, err = DefaultBinary(); err != nil {
			t.Fatalf("s3server: no cache folder for the server: %v", err)
		}
		where = path
	}
	fi, err := os.Stat(path)
	if err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
		return path
	}
	msg := fmt.Sprintf("the S3 server (versitygw %s) is not built at %s (%v); `make s3server` builds it (make test does)", Version, where, err)
	if os.Getenv("CI") != "" {
		t.Fatalf("%s, and CI is set: the S3 tests must run in CI", msg)
	}
	t.Skipf("!!!!! SKIPPING: %s !!!!!", msg)
	return ""
}

// Server is one running versitygw process. Its methods are for the test
// goroutine; the address, credentials and data survive Restart.
type Server struct {
	// Endpoint is the server's base URL, "http://127.0.0.1:port".
	Endpoint string
	// AccessKey and SecretKey are the root user's credentials, made up
	// for this server.
	AccessKey, SecretKey string

	bin, root, addr string
	log             *testrun.LockedBuffer
	cmd             *exec.Cmd
	exited          chan struct{}
}

// Start runs the binary Binary finds (it builds nothing) on a free loopback
// port with new credentials and an empty data folder under t.TempDir, waits
// until it answers, and stops it when the test ends (printing its log if
// the test failed). Buckets are made with CreateBucket; the server makes
// none by itself, so a missing bucket is an error, as on AWS.
func Start(t testing.TB) *Server {
	t.Helper()
	bin := Binary(t)
	s := &Server{
		AccessKey: "riff" + randomHex(t, 8),
		SecretKey: randomHex(t, 20),
		bin:       bin,
		root:      t.TempDir(),
		log:       &testrun.LockedBuffer{},
	}
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("versitygw's log:\n%s", s.log.String())
		}
	})
	// Another process may take the free port before the server binds it:
	// try a few.
	var err error
	for range 5 {
		s.addr = testrun.FreeAddr(t)
		s.Endpoint = "http://" + s.addr
		if err = s.start(); err == nil {
			return s
		}
	}
	t.Fatalf("s3server: %v\nlog:\n%s", err, s.log.String())
	return nil
}

// start runs the process and waits until it answers HTTP.
func (s *Server) start() error {
	// The posix backend keeps metadata (ETags, content types) in extended
	// attributes of the files (ext4, xfs, btrfs and tmpfs have them).
	cmd := exec.Command(s.bin,
		"--port", s.addr,
		"--region", Region,
		"--keep-alive",
		"--quiet",
		"posix", s.root)
	cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + s.root,
		"ROOT_ACCESS_KEY_ID=" + s.AccessKey,
		"ROOT_SECRET_ACCESS_KEY=" + s.SecretKey,
	}
	cmd.Stdout, cmd.Stderr = s.log, s.log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if runtime.GOOS == "linux" {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	fmt.Fprintf(s.log, "--- start %s on %s\n", s.bin, s.addr)
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	s.cmd, s.exited = cmd, make(chan struct{})
	go func() { cmd.Wait(); close(s.exited) }()

	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		// Any HTTP answer (403 to an anonymous request) means it serves.
		res, err := client.Get(s.Endpoint + "/")
		if err == nil {
			res.Body.Close()
			return nil
		}
		select {
		case <-s.exited:
			s.cmd = nil
			return fmt.Errorf("versitygw exited at start (%v)", cmd.ProcessState)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.Stop()
			return fmt.Errorf("versitygw not answering on %s after 30s: %v", s.addr, err)
		}
	}
}

// Stop ends the process (SIGTERM, then SIGKILL after 5 s) and waits for
// it. It is idempotent.
func (s *Server) Stop() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.exited
	}
	s.cmd = nil
}

// Restart stops the server and starts it again on the same address with
// the same credentials and data, as an operator's restart would. It may be
// called from any goroutine, one at a time.
func (s *Server) Restart() error {
	s.Stop()
	var err error
	for range 50 {
		// The old listener's port may take a moment to be free.
		if err = s.start(); err == nil {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("s3server: restart: %w", err)
}

// SetEnv points the AWS SDK's default credential chain of this test
// process at the server's credentials and at nothing else on the machine
// (no shared config or credentials files, no instance metadata, no
// endpoint or CA bundle override), for the test's duration (t.Setenv).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	SetCredentials(t, s.AccessKey, s.SecretKey)
}

// SetCredentials is SetEnv with any credentials, e.g. wrong ones.
func SetCredentials(t testing.TB, accessKey, secretKey string) {
	t.Helper()
	noFile := filepath.Join(t.TempDir(), "none")
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":           accessKey,
		"AWS_SECRET_ACCESS_KEY":       secretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_PROFILE":                 "",
		"AWS_REGION":                  "",
		"AWS_DEFAULT_REGION":          "",
		"AWS_CONFIG_FILE":             noFile,
		"AWS_SHARED_CREDENTIALS_FILE": noFile,
		"AWS_EC2_METADATA_DISABLED":   "true",
		"AWS_ENDPOINT_URL":            "",
		"AWS_ENDPOINT_URL_S3":         "",
		"AWS_CA_BUNDLE":               "", // the server is plain HTTP
	} {
		t.Setenv(k, v)
	}
}

// StoreURL returns the blob store URL (blob.Open's s3:// form) of bucket on
// this server, as riff's -blob flags take it.
func (s *Server) StoreURL(bucket string) string {
	q := url.Values{"endpoint": {s.Endpoint}, "path_style": {"true"}, "region": {Region}}
	return "s3://" + bucket + "?" + q.Encode()
}

// Client returns an S3 client of the server with its root credentials,
// for a test's look behind the store's back.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket makes an empty bucket.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("s3server: CreateBucket %s: %v", name, err)
	}
}

// Addr returns the server's "127.0.0.1:port".
func (s *Server) Addr() string { return s.addr }

// Log returns what the server has printed so far.
func (s *Server) Log() string { return s.log.String() }

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}
