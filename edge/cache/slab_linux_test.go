package cache

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestSentPagesSurviveSlotReuse is the root cause of the edge's foreign
// bytes, at the level of the kernel: sendfile from a slot into a socket
// whose reader is not reading returns once the pages are queued; the slot
// is freed and filled with other bytes; the reader then reads. It must get
// the bytes that were sent, not the new ones.
func TestSentPagesSurviveSlotReuse(t *testing.T) {
	const size = 256 << 10
	s := newTestSlab(t, 1, size)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	old := bytes.Repeat([]byte("old song bytes. "), size/16)
	i, _, _, ok := s.Alloc(old)
	if !ok {
		t.Fatal("Alloc failed")
	}
	raw, err := server.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var sent int
	var serr error
	raw.Control(func(fd uintptr) {
		// Room in the socket for the whole slot, so sendfile returns with
		// every page queued and none read.
		unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)
		off := s.Offset(i)
		for sent < size && serr == nil {
			var n int
			n, serr = unix.Sendfile(int(fd), s.FD(), &off, size-sent)
			sent += n
		}
	})
	if serr != nil || sent != size {
		t.Fatalf("sendfile: %d bytes, %v", sent, serr)
	}
	s.Release(i)
	j, _, mem, ok := s.Alloc(bytes.Repeat([]byte("NEW SONG BYTES! "), size/16))
	if !ok || j != i {
		t.Fatalf("Alloc = slot %d, %v; want slot %d back", j, ok, i)
	}
	client.SetReadDeadline(time.Now().Add(10 * time.Second))
	got := make([]byte, size)
	if _, err := io.ReadFull(client, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, old) {
		t.Fatalf("the reader got %d of %d bytes from the slot's new contents", size-countEqual(got, old), size)
	}
	if !bytes.HasPrefix(mem, []byte("NEW SONG BYTES! ")) {
		t.Fatal("the new slice does not read back")
	}
}

func countEqual(a, b []byte) int {
	n := 0
	for k := range a {
		if a[k] == b[k] {
			n++
		}
	}
	return n
}

func TestMaxShmemFolio(t *testing.T) {
	write := func(t *testing.T, dir string, files map[string]string) {
		for name, body := range files {
			p := filepath.Join(dir, name)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(body+"\n"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  int64
	}{
		{"no sysfs", nil, 0},
		{"never", map[string]string{"shmem_enabled": "always within_size advise [never] deny force", "hpage_pmd_size": "2097152"}, 0},
		{"advise is not for pwrite", map[string]string{"shmem_enabled": "always within_size [advise] never deny force"}, 0},
		{"always", map[string]string{"shmem_enabled": "[always] within_size advise never deny force", "hpage_pmd_size": "2097152"}, 2 << 20},
		{"within_size, no pmd size file", map[string]string{"shmem_enabled": "always [within_size] advise never deny force"}, 2 << 20},
		{"an mTHP size on its own", map[string]string{
			"shmem_enabled":                  "always within_size advise [never] deny force",
			"hugepages-64kB/shmem_enabled":   "[always] inherit within_size advise never",
			"hugepages-2048kB/shmem_enabled": "always [inherit] within_size advise never",
		}, 64 << 10},
		{"inherit of force", map[string]string{
			"shmem_enabled":                  "always within_size advise never deny [force]",
			"hpage_pmd_size":                 "2097152",
			"hugepages-1024kB/shmem_enabled": "always [inherit] within_size advise never",
		}, 2 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tc.files)
			if got := maxShmemFolio(dir); got != tc.want {
				t.Errorf("maxShmemFolio = %d, want %d", got, tc.want)
			}
		})
	}
}
