package catalogd

import (
	"context"
	"net/http"
	"slices"
	"time"

	"riff/catalogd/store"
	"riff/internal/blobkey"
)

// Regions (package regions): with Config.Regions set, playback URLs start
// with an edge of the listener's region (a trusted load-balancer header,
// else the profile country, else the default region) when that region
// holds the song's current version, else of the nearest region that does
// (the home region always does: it is where versions are published), and
// GET /songs/{id} adds the next such region's URLs as fallback_urls.
// Tokens name a blob-key prefix, not a host, so one token opens the song
// in every region (every region's edges hold catalogd's public keys).

// playbackURLs are a song's signed URLs on one region's edge.
type playbackURLs struct {
	Region    string `json:"region,omitempty"`
	HLSURL    string `json:"hls_url"`
	DASHURL   string `json:"dash_url"`
	StreamURL string `json:"stream_url"`
}

// edgeBases returns the edge base URL playback URLs of so's current
// version start with for the caller of r (nil: no request, as for the
// Subsonic API), and the fallback region's ("" when there is none), with
// the regions' names ("" without regions).
func (s *Server) edgeBases(ctx context.Context, r *http.Request, p principal, so store.Song) (base, fallback, region, fallbackRegion string, err error) {
	ch := s.cfg.Regions
	if ch == nil {
		return s.cfg.EdgeURL, "", "", "", nil
	}
	country := ""
	if p.UserID != 0 && (r == nil || ch.NeedsCountry(r)) {
		u, err := s.store.UserByID(ctx, p.UserID)
		if err != nil {
			return "", "", "", "", err
		}
		country = u.Country
	}
	want := ch.Set.Default()
	if r != nil {
		want, _ = ch.Choose(r, country)
	} else if c := ch.Set.ForCountry(country); c != "" {
		want = c
	}
	have, err := s.store.VersionRegions(ctx, so.ID, so.CurrentVersion)
	if err != nil {
		return "", "", "", "", err
	}
	home := ch.Set.Home()
	region, fallbackRegion = ch.Set.Pick(want, func(name string) bool { return name == home || slices.Contains(have, name) })
	key := uint64(p.UserID)
	base = ch.Set.Edge(region, key)
	if fallbackRegion != "" {
		fallback = ch.Set.Edge(fallbackRegion, key)
	}
	return base, fallback, region, fallbackRegion, nil
}

// songURLs returns the playback URLs of a playable song under base with
// token and prefix at kbps.
func songURLs(base, token, prefix string, kbps int) playbackURLs {
	b := base + "/t/" + token + "/" + prefix
	return playbackURLs{
		HLSURL:    b + blobkey.MasterName,
		DASHURL:   b + blobkey.ManifestName,
		StreamURL: b + blobkey.Rendition{Format: blobkey.FormatOgg, Kbps: kbps}.Media(),
	}
}

// subsonicRegionTimeout bounds the region lookups of a Subsonic playback
// URL, whose interface carries no request context.
const subsonicRegionTimeout = 5 * time.Second

// subsonicBase is edgeBases' serving base for a Subsonic request, which
// carries no request to the catalog (see subsonicCatalog.PlaybackURL).
func (s *Server) subsonicBase(p principal, so store.Song) (string, error) {
	if s.cfg.Regions == nil {
		return s.cfg.EdgeURL, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), subsonicRegionTimeout)
	defer cancel()
	base, _, _, _, err := s.edgeBases(ctx, nil, p, so)
	return base, err
}

// allEdges returns every public edge base URL the player may load media
// from: Config.EdgeURL's and every region's.
func (c *Config) allEdges() []string {
	es := []string{c.EdgeURL}
	if c.Regions != nil {
		for _, e := range c.Regions.Set.PublicEdges() {
			if !slices.Contains(es, e) {
				es = append(es, e)
			}
		}
	}
	return es
}
