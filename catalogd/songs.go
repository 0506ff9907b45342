package catalogd

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"riff/catalogd/store"
	"riff/internal/blobkey"
	"riff/internal/playtoken"
)

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// Bitrates: what each tier may play at most, and the ladder.
const (
	freeKbps    = 128
	premiumKbps = 320
)

func tierKbps(tier string) int {
	if tier == store.TierPremium {
		return premiumKbps
	}
	return freeKbps
}

// visibleSong loads song id as p may see it: ready songs are public; songs
// that are processing, failed or taken down exist only for the owner of
// the album's artist and admins (404 for everyone else).
func (s *Server) visibleSong(ctx context.Context, p principal, id int64) (store.Song, error) {
	so, err := s.store.SongByID(ctx, id)
	if err != nil {
		return so, err
	}
	if so.Status == store.StatusReady {
		return so, nil
	}
	if p.UserID != 0 {
		if _, err := s.ownedArtist(ctx, p, so.AlbumArtistID, ""); err == nil {
			return so, nil
		}
	}
	return store.Song{}, newError(kindNotFound, "not_found", "No such song.")
}

// listedViews is the views of items, a list of p's (a playlist's items,
// recent plays): view shows an item with the view of its song (picked by
// song), which is listedSongView's, marked liked.
func listedViews[T, V any](ctx context.Context, s *Server, p principal, items []T, song func(T) store.Song,
	view func(T, songView) V) ([]V, error) {
	songs := make([]songView, len(items))
	owned := map[int64]bool{}
	for i, it := range items {
		var err error
		if songs[i], err = s.listedSongView(ctx, p, song(it), owned); err != nil {
			return nil, err
		}
	}
	if err := s.markLiked(ctx, p, songs); err != nil {
		return nil, err
	}
	views := make([]V, len(items))
	for i, it := range items {
		views[i] = view(it, songs[i])
	}
	return views, nil
}

// statusUnavailable is the status a list shows for a song its caller may
// not see (see listedSongView).
const statusUnavailable = "unavailable"

// listedSongView is the view of so in a list of p's (a playlist's items,
// liked songs, recently played): a song p may not see (not ready, and p
// does not own its artist; GET /songs/{id} is 404 for p) keeps its place
// but shows only its id and status "unavailable", no title, album or
// artists. owned caches p's ownership per artist across one list.
func (s *Server) listedSongView(ctx context.Context, p principal, so store.Song, owned map[int64]bool) (songView, error) {
	if so.Status == store.StatusReady {
		return s.viewSong(so), nil
	}
	mine, ok := owned[so.AlbumArtistID]
	if !ok {
		_, err := s.ownedArtist(ctx, p, so.AlbumArtistID, "")
		var ae *apiError
		switch {
		case err == nil:
			mine = true
		case errors.As(err, &ae) && ae.kind == kindForbidden, errors.Is(err, store.ErrNotFound):
		default:
			return songView{}, err
		}
		owned[so.AlbumArtistID] = mine
	}
	if mine {
		return s.viewSong(so), nil
	}
	return songView{ID: so.ID, Artists: []creditView{}, Status: statusUnavailable}, nil
}

// playbackToken returns a token that opens the current version folder of
// so for p, capped at p's tier, and its expiry: a token minted for the
// same user, folder and cap within Config.PlaybackReuse, or a new one.
func (s *Server) playbackToken(p principal, so store.Song) (token, prefix string, kbps int, expires time.Time, err error) {
	if so.CurrentVersion > 0 { // else the empty prefix, which opens nothing
		prefix = blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, so.CurrentVersion)
	}
	kbps = tierKbps(p.Tier)
	now := s.now()
	key := mintKey{user: p.UserID, prefix: prefix, kbps: kbps}
	if s.cfg.PlaybackReuse > 0 {
		if e, ok := s.minted.Get(key); ok && now.Before(e.minted.Add(s.cfg.PlaybackReuse)) {
			return e.token, prefix, kbps, e.expires, nil
		}
	}
	token, err = s.playback.Mint(playtoken.Claims{
		Type: playtoken.TypePlay, Subject: itoa(p.UserID), Prefix: prefix, MaxKbps: kbps,
	}, s.cfg.PlaybackTTL)
	if err != nil {
		return "", "", 0, time.Time{}, err
	}
	expires = now.Add(s.cfg.PlaybackTTL).Truncate(time.Second) // the token's exp (second precision)
	if s.cfg.PlaybackReuse > 0 {
		s.minted.Put(key, mintEntry{token: token, minted: now, expires: expires})
	}
	return token, prefix, kbps, expires, nil
}

type mintKey struct {
	user   int64
	prefix string
	kbps   int
}

type mintEntry struct {
	token           string
	minted, expires time.Time
}

// playable reports whether a song has media to play.
func playable(so store.Song) bool { return so.Status == store.StatusReady && so.CurrentVersion > 0 }

// getSong answers a song's metadata and, for a logged-in caller on a ready
// song, signed playback URLs on the edge: HLS, DASH and the Ogg stream at
// the caller's tier, with their expiry.
func (s *Server) getSong(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	so, err := s.visibleSong(r.Context(), p, id)
	if err != nil {
		return err
	}
	v := s.viewSong(so)
	if p.UserID != 0 {
		one := []songView{v}
		if err := s.markLiked(r.Context(), p, one); err != nil {
			return err
		}
		v = one[0]
	}
	v.Processing = s.jobProgress(r.Context(), p, so)
	if p.UserID != 0 && playable(so) {
		token, prefix, kbps, exp, err := s.playbackToken(p, so)
		if err != nil {
			return err
		}
		base, fallback, _, fallbackRegion, err := s.edgeBases(r.Context(), r, p, so)
		if err != nil {
			return err
		}
		u := songURLs(base, token, prefix, kbps)
		v.HLSURL, v.DASHURL, v.StreamURL = u.HLSURL, u.DASHURL, u.StreamURL
		v.ExpiresAt = &exp
		if fallback != "" {
			f := songURLs(fallback, token, prefix, kbps)
			f.Region = fallbackRegion
			v.FallbackURLs = &f
		}
	} else if p.UserID == 0 {
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Vary", "Authorization")
	}
	return writeJSON(w, http.StatusOK, v)
}

// streamSong redirects to a signed URL of the song's Ogg rendition at the
// asked quality (default: the best the tier allows), capped by the tier.
func (s *Server) streamSong(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	q, err := query(r, "quality")
	if err != nil {
		return err
	}
	want := tierKbps(p.Tier)
	if v, ok := q["quality"]; ok {
		switch v[0] {
		case "64":
			want = 64
		case "128":
			want = 128
		case "320":
			want = 320
		default:
			return invalidField("quality", "invalid_enum", "quality must be 64, 128 or 320.")
		}
	}
	so, err := s.visibleSong(r.Context(), p, id)
	if err != nil {
		return err
	}
	if !playable(so) {
		return newError(kindConflict, "not_playable", "The song has no published media yet (status %s).", so.Status)
	}
	url, err := s.renditionURL(r.Context(), r, p, so, blobkey.FormatOgg, want)
	if err != nil {
		return err
	}
	w.Header().Set("Cache-Control", "no-store")
	http.Redirect(w, r, url, http.StatusFound)
	return nil
}

// renditionURL returns the signed edge URL of a playable song's rendition
// in format at want kbps (a rung of the ladder), capped by p's tier.
func (s *Server) renditionURL(ctx context.Context, r *http.Request, p principal, so store.Song, format string, want int) (string, error) {
	token, prefix, kbps, _, err := s.playbackToken(p, so)
	if err != nil {
		return "", err
	}
	base, _, _, _, err := s.edgeBases(ctx, r, p, so)
	if err != nil {
		return "", err
	}
	return base + "/t/" + token + "/" + prefix + blobkey.Rendition{Format: format, Kbps: min(kbps, want)}.Media(), nil
}

// jobProgress returns the newest package job of a song when it should be
// shown: to the song's owner, while a version is on its way or when it
// failed (a failed replacement shows until the next upload).
func (s *Server) jobProgress(ctx context.Context, p principal, so store.Song) *jobView {
	if p.UserID == 0 || (p.Role != store.RoleArtist && p.Role != store.RoleAdmin && so.Status == store.StatusReady) {
		return nil
	}
	j, err := s.store.LatestJob(ctx, so.ID, store.JobPackage)
	if err != nil || j.State == store.JobDone {
		return nil
	}
	if so.Status == store.StatusReady {
		if _, err := s.ownedArtist(ctx, p, so.AlbumArtistID, ""); err != nil {
			return nil
		}
	}
	return newJobView(j)
}
