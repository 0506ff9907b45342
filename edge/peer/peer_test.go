package peer

import (
	"fmt"
	"testing"
	"time"
)

type nopBreaker struct{}

func (nopBreaker) Allow() bool { return true }
func (nopBreaker) Success()    {}
func (nopBreaker) Failure()    {}

func newFleet(t *testing.T, urls []string) *Fleet {
	t.Helper()
	f, err := New(Config{URLs: urls, Self: urls[0], Secret: "s", Timeout: time.Second, NewBreaker: func() Breaker { return nopBreaker{} }})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func urls(n int) []string {
	var out []string
	for i := range n {
		out = append(out, fmt.Sprintf("http://10.0.2.%d:9082", 21+i))
	}
	return out
}

// TestRendezvous: owners are spread evenly, Rank starts with Owner and
// holds every edge once, and removing an edge moves only the slices it
// owned.
func TestRendezvous(t *testing.T) {
	const slices = 30000
	four, three := newFleet(t, urls(4)), newFleet(t, urls(3))
	count := make([]int, 4)
	moved := 0
	for i := range slices {
		key, idx := fmt.Sprintf("artists/%d/albums/1/songs/2/v1/aac_128.mp4", i/10), int64(i%10)
		o := four.Owner(key, idx)
		count[o]++
		r := four.Rank(key, idx, nil)
		if r[0] != o || len(r) != 4 {
			t.Fatalf("Rank(%s, %d) = %v, Owner %d", key, idx, r, o)
		}
		seen := map[int]bool{}
		for _, i := range r {
			seen[i] = true
		}
		if len(seen) != 4 {
			t.Fatalf("Rank(%s, %d) = %v: not every edge once", key, idx, r)
		}
		// Without edge 3, a slice it did not own keeps its owner; one it
		// owned goes to its second choice.
		o3 := three.Owner(key, idx)
		switch {
		case o != 3 && o3 != o:
			t.Fatalf("slice (%s, %d) moved from %d to %d when edge 3 left", key, idx, o, o3)
		case o == 3 && o3 != r[1]:
			t.Fatalf("slice (%s, %d) of the leaving edge went to %d, want its second choice %d", key, idx, o3, r[1])
		case o == 3:
			moved++
		}
	}
	for i, n := range count {
		if n < slices/4*9/10 || n > slices/4*11/10 {
			t.Errorf("edge %d owns %d of %d slices, want about a quarter", i, n, slices)
		}
	}
	if moved != count[3] {
		t.Errorf("moved %d, edge 3 owned %d", moved, count[3])
	}
}

func TestRankAllocatesNothing(t *testing.T) {
	f := newFleet(t, urls(5))
	var buf [16]int
	if n := testing.AllocsPerRun(100, func() { f.Rank("artists/1/albums/2/songs/3/v1/aac_128.mp4", 7, buf[:0]) }); n != 0 {
		t.Errorf("Rank allocates %v times", n)
	}
}

func TestConfig(t *testing.T) {
	for _, tc := range []struct {
		urls []string
		self string
		ok   bool
	}{
		{urls(3), urls(3)[1], true},
		{urls(3), "http://10.0.2.99:9082", false},
		{[]string{"http://a:1", "http://a:1"}, "http://a:1", false},
		{[]string{"ftp://a:1"}, "ftp://a:1", false},
		{[]string{"http://a:1/x"}, "http://a:1/x", false},
		{nil, "", false},
	} {
		if err := CheckURLs(tc.urls, tc.self); (err == nil) != tc.ok {
			t.Errorf("CheckURLs(%v, %q) = %v, want ok %v", tc.urls, tc.self, err, tc.ok)
		}
	}
	if _, err := New(Config{URLs: urls(2), Self: urls(2)[0], NewBreaker: func() Breaker { return nopBreaker{} }}); err == nil {
		t.Error("New without a secret succeeded")
	}
}

func TestAuthorized(t *testing.T) {
	f := newFleet(t, urls(2))
	for _, tc := range []struct {
		in   string
		want bool
	}{{"s", true}, {"", false}, {"S", false}, {"s ", false}} {
		if got := f.Authorized([]byte(tc.in)); got != tc.want {
			t.Errorf("Authorized(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestPath(t *testing.T) {
	p := Path("artists/1/albums/2/songs/3/v1/aac_128.mp4", 42)
	if want := "/peer/artists/1/albums/2/songs/3/v1/aac_128.mp4?gen=42"; p != want {
		t.Errorf("Path = %q, want %q", p, want)
	}
	if !IsRequest([]byte("/peer/x")) || IsRequest([]byte("/peer/")) || IsRequest([]byte("/purge")) {
		t.Error("IsRequest")
	}
}
