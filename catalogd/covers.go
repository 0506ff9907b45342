package catalogd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/cover"
	"riff/packager"
)

// Album covers. An album's cover is a set of square JPEGs (package cover
// renders them, blobkey.CoverSizes) in a cover folder named by a content
// hash under the album's blob folder; the edge serves them without a
// playback token under /covers/ (blobkey.CoverPath), cacheable forever. A
// cover comes from PUT /albums/{id}/cover, or from the embedded art of an
// upload to an album that has none. Replacing a cover queues the purge of
// the old cover folder (store.SetAlbumCover) and deletes its objects.

// coverRoutes are the cover routes (see routes).
func (s *Server) coverRoutes() []route {
	return []route{
		{"PUT", "/albums/{id}/cover", authRequired, s.putCover},
		{"DELETE", "/albums/{id}/cover", authRequired, s.deleteCover},
	}
}

// deleteCover is DELETE /albums/{id}/cover: the album's artist removes its
// cover; its images are deleted and purged from the edges. It answers 200
// with the album (its cover link, if any, shows again), also when the
// album had no cover.
func (s *Server) deleteCover(w http.ResponseWriter, r *http.Request, p principal) error {
	ctx := r.Context()
	al, err := s.coverAlbum(ctx, r, p)
	if err != nil {
		return err
	}
	ch, err := s.store.RemoveAlbumCover(ctx, al.ID)
	if err != nil {
		return err
	}
	s.dropOldCover(ctx, al.ID, ch)
	al, err = s.store.AlbumByID(ctx, al.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.viewAlbum(al))
}

// putCover is PUT /albums/{id}/cover: the album's artist sends an image
// (JPEG, PNG or WebP, the body's bytes decide) as the request body. It
// answers 200 with the album, its cover_url and cover_sizes naming the new
// images.
func (s *Server) putCover(w http.ResponseWriter, r *http.Request, p principal) error {
	ctx := r.Context()
	al, err := s.coverAlbum(ctx, r, p)
	if err != nil {
		return err
	}
	lim := cover.DefaultLimits
	tooLarge := newError(kindTooLarge, "cover_too_large", "The image is larger than %d bytes.", lim.MaxBytes)
	if r.ContentLength > lim.MaxBytes {
		return tooLarge
	}
	// Images are held in memory: they count against the upload gate like
	// audio uploads (per account, in all, and in bytes).
	reserve := lim.MaxBytes
	if r.ContentLength >= 0 {
		reserve = r.ContentLength
	}
	leave, err := s.uploads.enter(p.UserID, reserve)
	if err != nil {
		return err
	}
	defer leave()
	// The server's timeouts suit small API bodies; an image gets a minute
	// more to arrive (10 MiB at 200 kB/s).
	_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(time.Minute))
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, lim.MaxBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case err != nil:
		return &apiError{kind: kindInvalid, code: "invalid_body", detail: "The request body cannot be read.", cause: err}
	}
	img, err := s.renderCover(ctx, data, lim)
	if err != nil {
		return coverProblem(err, lim)
	}
	if err := s.storeCover(ctx, al, img); err != nil {
		return err
	}
	ch, err := s.store.SetAlbumCover(ctx, al.ID, img.Hash, false)
	if err != nil {
		return err
	}
	s.dropOldCover(ctx, al.ID, ch)
	al, err = s.store.AlbumByID(ctx, al.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.viewAlbum(al))
}

// coverAlbum returns the album of a cover request's path when this server
// stores covers and p may change the album's cover (its artist).
func (s *Server) coverAlbum(ctx context.Context, r *http.Request, p principal) (store.Album, error) {
	if s.blob == nil {
		return store.Album{}, newError(kindUnavailable, "covers_unavailable", "This server does not store covers.")
	}
	id, err := pathID(r)
	if err != nil {
		return store.Album{}, err
	}
	al, err := s.store.AlbumByID(ctx, id)
	if err != nil {
		return store.Album{}, err
	}
	if _, err := s.ownedArtist(ctx, p, al.ArtistID, ""); err != nil {
		return store.Album{}, newError(kindForbidden, "not_owner", "Only the album's artist may change its cover.")
	}
	return al, nil
}

// renderCover checks and renders an image (cover.Render), at most one per
// core at a time together with the upload checks (s.checks).
func (s *Server) renderCover(ctx context.Context, data []byte, lim cover.Limits) (*cover.Image, error) {
	// Refuse from the header before waiting for a turn: a bomb or a
	// non-image never takes a slot.
	if _, err := cover.Check(data, lim); err != nil {
		return nil, err
	}
	select {
	case s.checks <- struct{}{}:
		defer func() { <-s.checks }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return cover.Render(data, lim)
}

// coverProblem maps a refusal of package cover to an API error.
func coverProblem(err error, lim cover.Limits) error {
	switch {
	case errors.Is(err, cover.ErrTooLarge):
		return &apiError{kind: kindTooLarge, code: "cover_too_large", cause: err,
			detail: fmt.Sprintf("The image is larger than %d bytes.", lim.MaxBytes)}
	case errors.Is(err, cover.ErrFormat):
		return &apiError{kind: kindUnsupportedMedia, code: "unsupported_image", cause: err,
			detail: "The body is not a JPEG, PNG or WebP image."}
	case errors.Is(err, cover.ErrDimension):
		return &apiError{kind: kindUnprocessable, code: "image_dimensions", cause: err,
			detail: fmt.Sprintf("The image must be %d to %d pixels a side and at most %d pixels in all.", lim.MinSide, lim.MaxSide, lim.MaxPixels)}
	case errors.Is(err, cover.ErrCorrupt):
		return &apiError{kind: kindInvalid, code: "undecodable_image", cause: err,
			detail: "The image cannot be decoded (corrupt or truncated?)."}
	}
	return err
}

// storeCover writes the sizes of img into the album's cover folder. The
// keys are immutable (the folder is named by the image's hash), so writing
// them again for the same image is harmless.
func (s *Server) storeCover(ctx context.Context, al store.Album, img *cover.Image) error {
	for i, n := range blobkey.CoverSizes {
		key := blobkey.CoverKey(al.ArtistID, al.ID, img.Hash, n)
		if _, err := s.blob.Put(ctx, key, bytes.NewReader(img.Sizes[i]), blob.PutOptions{ContentType: "image/jpeg"}); err != nil {
			return fmt.Errorf("cover of album %d: %w", al.ID, err)
		}
	}
	return nil
}

// dropOldCover, after a cover change committed, sends the queued purge of
// the replaced or removed cover at once and deletes its objects (best
// effort: a leftover is unreferenced, and its purge is already queued).
func (s *Server) dropOldCover(ctx context.Context, albumID int64, ch store.CoverChange) {
	if !ch.Changed || ch.Previous == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, n := range blobkey.CoverSizes {
		key := blobkey.CoverKey(ch.ArtistID, albumID, ch.Previous, n)
		if err := s.blob.Delete(ctx, key); err != nil && !errors.Is(err, blob.ErrNotFound) {
			s.log.WarnContext(ctx, "deleting a replaced cover", "key", key, "err", err)
		}
	}
	s.purged()
}

// embeddedCover makes the picture embedded in an upload (probed as pr) the
// cover of album al when it has none, and returns the album's cover hash
// after it. It is best effort: a picture that cannot be extracted or is
// refused by package cover is logged and the upload goes on without it.
func (s *Server) embeddedCover(ctx context.Context, path string, pr *packager.Probe, al store.Album) string {
	if al.CoverHash != "" || pr == nil || pr.Cover == nil || s.blob == nil || s.pk == nil {
		return al.CoverHash
	}
	hash := ""
	lim := cover.DefaultLimits
	err := func() error {
		data, err := s.pk.ExtractCover(ctx, path, pr, lim.MaxBytes)
		if err != nil {
			return err
		}
		img, err := s.renderCover(ctx, data, lim)
		if err != nil {
			return err
		}
		if err := s.storeCover(ctx, al, img); err != nil {
			return err
		}
		ch, err := s.store.SetAlbumCover(ctx, al.ID, img.Hash, true)
		if err != nil {
			return err
		}
		hash = img.Hash
		if !ch.Changed {
			hash = ch.Previous
		}
		if !ch.Changed && ch.Previous != img.Hash {
			// Another cover came first: these objects are nobody's.
			s.dropOldCover(ctx, al.ID, store.CoverChange{ArtistID: al.ArtistID, Previous: img.Hash, Changed: true})
		}
		return nil
	}()
	if err != nil {
		s.log.WarnContext(ctx, "embedded art not used as the album cover", "album", al.ID, "err", err)
	}
	return hash
}
