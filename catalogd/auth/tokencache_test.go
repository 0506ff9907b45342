package auth

import (
	"strconv"
	"testing"
)

func TestTokenCache(t *testing.T) {
	var c TokenCache[string, int]
	if _, ok := c.Get("a"); ok {
		t.Fatal("empty cache has a")
	}
	c.Put("a", 1)
	if v, ok := c.Get("a"); !ok || v != 1 {
		t.Fatalf("Get(a) = %v, %v; want 1, true", v, ok)
	}
	for i := range TokenCacheSize {
		c.Put(strconv.Itoa(i), i)
	}
	if _, ok := c.Get("a"); ok {
		t.Error("a full cache was not emptied")
	}
}
