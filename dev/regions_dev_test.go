package dev

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"riff/catalogd/regions"
	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/testrun"
)

// TestDevTwoRegions: riff dev -regions 2 runs a second region (blob
// folder, origin, edge) and catalogd with a generated regions file; a
// version published in the home region reaches the second region's store
// byte for byte, and its edge is up.
func TestDevTwoRegions(t *testing.T) {
	data := t.TempDir()
	api := testrun.FreeAddr(t)
	out, stop := runDev(t, "-data", data, "-catalogd-listen", api, "-origin-listen", testrun.FreeAddr(t),
		"-edge-listen", testrun.FreeAddr(t), "-edge-admin-listen", testrun.FreeAddr(t), "-demo=false",
		"-regions", "2", "-ready-timeout", "60s")
	waitUntil(t, 30*time.Second, func() bool { return strings.Contains(out.String(), "region na") }, "the regions in the banner")
	m := regexp.MustCompile(`region na\s+edge (http://\S+)\s+origin (http://\S+)\s+blob (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no region na in the banner:\n%s", out)
	}
	naBlob := m[3]
	set, err := regions.Load(filepath.Join(data, "regions.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if got := set.Names(); len(got) != 2 || set.Home() != "eu" || set.ForCountry("US") != "na" {
		t.Errorf("generated regions file: %v, home %s", got, set.Home())
	}
	if code, _ := fetchURL(t, m[2]+"/readyz"); code != 200 {
		t.Errorf("na origin /readyz = %d", code)
	}

	ctx := context.Background()
	st, err := store.Open(ctx, "file:"+filepath.Join(data, "riff.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	owner, err := st.CreateUser(ctx, store.NewUser{Email: "dev-regions@example.com", PasswordHash: "!", DisplayName: "D"})
	if err != nil {
		t.Fatal(err)
	}
	ar, err := st.CreateArtist(ctx, owner.ID, store.NewArtist{Name: "Dev Regions"})
	if err != nil {
		t.Fatal(err)
	}
	al, err := st.CreateAlbum(ctx, store.NewAlbum{ArtistID: ar.ID, Title: "A", Type: store.AlbumTypeAlbum})
	if err != nil {
		t.Fatal(err)
	}
	so, err := st.CreateSong(ctx, store.NewSong{AlbumID: al.ID, Title: "S", Genre: "rock"})
	if err != nil {
		t.Fatal(err)
	}
	home, err := blob.NewFS(filepath.Join(data, "blob"))
	if err != nil {
		t.Fatal(err)
	}
	defer home.Close()
	key := blobkey.VersionFolder(ar.ID, al.ID, so.ID, 1) + "ogg_128.ogg"
	body := bytes.Repeat([]byte("two regions "), 10_000)
	if _, err := home.Put(ctx, key, bytes.NewReader(body), blob.PutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := st.PublishVersion(ctx, so.ID, 1, []store.Rendition{{Format: "ogg", BitrateKbps: 128, BlobKey: key, SizeBytes: int64(len(body))}}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 60*time.Second, func() bool {
		got, err := os.ReadFile(filepath.Join(naBlob, key))
		return err == nil && bytes.Equal(got, body)
	}, "the version to reach region na's blob folder")
	if err := stop(); err != nil {
		t.Errorf("riff dev after cancel: %v", err)
	}
}
