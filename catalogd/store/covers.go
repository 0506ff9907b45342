package store

import (
	"context"
	"database/sql"
	"fmt"

	"riff/internal/blobkey"
)

// Album covers: an album's cover is named by a content hash (column
// cover_hash, migration 0010); its images are immutable blob objects in
// the cover folder blobkey.CoverFolder(artist, album, hash), written
// before the hash is set here. A new cover is a new folder, so replacing
// one queues the purge of the old folder in the same transaction.

// CoverChange is what SetAlbumCover did.
type CoverChange struct {
	ArtistID int64
	Previous string // the hash it replaced, "" when the album had none
	Changed  bool   // false: the album kept its cover (same hash, or ifNone and it had one)
}

// SetAlbumCover makes hash the cover of album albumID. With ifNone it
// changes nothing when the album already has a cover (an upload's
// embedded art only fills a blank). When it replaces another cover, the
// old cover folder is queued for purging in the same transaction, so the
// edges drop it if and only if the change commits. The error wraps
// ErrNotFound when the album does not exist.
func (s *Store) SetAlbumCover(ctx context.Context, albumID int64, hash string, ifNone bool) (CoverChange, error) {
	if !blobkey.ValidCoverHash(hash) {
		return CoverChange{}, fmt.Errorf("store: set cover of album %d: invalid hash %q", albumID, hash)
	}
	return s.changeCover(ctx, albumID, hash, ifNone)
}

// RemoveAlbumCover leaves album albumID without a cover of its own (the
// artist's cover link, if any, shows again) and queues the purge of the
// removed cover folder in the same transaction. Changed is false when the
// album had none. The error wraps ErrNotFound when the album does not
// exist.
func (s *Store) RemoveAlbumCover(ctx context.Context, albumID int64) (CoverChange, error) {
	return s.changeCover(ctx, albumID, "", false)
}

// changeCover sets cover_hash to hash ("": none), purging the folder it
// replaces.
func (s *Store) changeCover(ctx context.Context, albumID int64, hash string, ifNone bool) (CoverChange, error) {
	var ch CoverChange
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		q := `SELECT artist_id, cover_hash FROM albums WHERE id = $1`
		if s.dialect == Postgres {
			q += ` FOR UPDATE` // concurrent replacements each purge what they replace
		}
		if err := tx.QueryRowContext(ctx, q, albumID).Scan(&ch.ArtistID, &ch.Previous); err != nil {
			return notFound(err, "album", albumID)
		}
		if ch.Previous == hash || (ifNone && ch.Previous != "") {
			return nil
		}
		if _, err := tx.ExecContext(ctx, `UPDATE albums SET cover_hash = $1, updated_at = $2 WHERE id = $3`,
			hash, s.nowMs(), albumID); err != nil {
			return err
		}
		ch.Changed = true
		if ch.Previous == "" {
			return nil
		}
		return s.purgeInTx(ctx, tx, blobkey.CoverFolder(ch.ArtistID, albumID, ch.Previous))
	})
	if err != nil {
		return CoverChange{}, fmt.Errorf("store: change cover of album %d: %w", albumID, err)
	}
	return ch, nil
}
