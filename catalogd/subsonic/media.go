package subsonic

import (
	"net/http"
	"strings"

	"riff/catalogd/store"
)

// Media never passes through catalogd: stream and hls.m3u8 redirect to
// signed edge URLs (what GET /songs/{id} hands out), getCoverArt to the
// album's cover.

// playableSong loads song id for playback by the caller.
func (h *Handler) playableSong(c *call) (store.Song, error) {
	id, err := c.id("id")
	if err != nil {
		return store.Song{}, err
	}
	so, err := h.catalog.VisibleSong(c.ctx, c.user, id)
	if err != nil {
		return so, notFound(err, "song")
	}
	if so.Status != store.StatusReady || so.CurrentVersion == 0 {
		return so, Fail(CodeNotFound, "The song has no published media yet.")
	}
	return so, nil
}

// redirect answers with a 302 to url.
func (c *call) redirect(url string) {
	c.w.Header().Set("Cache-Control", "no-store")
	http.Redirect(c.w, c.r, url, http.StatusFound)
	c.redirected = true
}

// stream redirects to the Ogg Vorbis rendition, or the AAC one with
// format aac, m4a, mp4 or fmp4, at the best bitrate within maxBitRate
// (kbps; 0: no limit) and the caller's tier. Riff does not transcode on
// the fly: other formats get the Ogg rendition.
func (h *Handler) stream(c *call, _ *response) error {
	so, err := h.playableSong(c)
	if err != nil {
		return err
	}
	maxKbps, err := c.intParam("maxBitRate", 0, 0, 1<<20)
	if err != nil {
		return err
	}
	m := MediaOgg
	switch strings.ToLower(c.r.Form.Get("format")) {
	case "aac", "m4a", "mp4", "fmp4":
		m = MediaAAC
	}
	url, err := h.catalog.PlaybackURL(c.user, so, m, maxKbps)
	if err != nil {
		return err
	}
	c.redirect(url)
	return nil
}

// hls redirects to the song's signed HLS master playlist (its variants
// are filtered to the caller's tier by the edge).
func (h *Handler) hls(c *call, _ *response) error {
	so, err := h.playableSong(c)
	if err != nil {
		return err
	}
	url, err := h.catalog.PlaybackURL(c.user, so, MediaMaster, 0)
	if err != nil {
		return err
	}
	c.redirect(url)
	return nil
}

// getCoverArt redirects to the cover of the album al-{id} (or {id}): the
// edge's image of the smallest size at least `size` pixels (public,
// immutable), or the artist's link. Error 70 when the album has none.
func (h *Handler) getCoverArt(c *call, _ *response) error {
	v, err := c.param("id", true)
	if err != nil {
		return err
	}
	id, err := parseID(strings.TrimPrefix(v, "al-"))
	if err != nil {
		return err
	}
	size, err := c.intParam("size", 0, 0, 1<<16)
	if err != nil {
		return err
	}
	al, err := h.store.AlbumByID(c.ctx, id)
	if err != nil {
		return notFound(err, "album")
	}
	url := h.catalog.CoverURL(al.ArtistID, al.ID, al.CoverHash, al.CoverURL, size)
	if url == "" {
		return Fail(CodeNotFound, "The album has no cover.")
	}
	c.redirect(url)
	return nil
}

// download is refused: a streaming service does not hand out its media
// files (error 50, as for a user without the download role).
func (h *Handler) download(*call, *response) error {
	return Fail(CodeNotAuthorized, "Riff streams; it does not offer downloads.")
}
