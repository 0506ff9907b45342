package catalogd

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	"riff/catalogd/ingest"
	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/obs"
	"riff/packager"
)

// Uploads: the HTTP side of ingest. The handlers check an upload (sniff,
// probe, decode: package packager runs ffprobe and ffmpeg), store its
// original and queue its packaging job; package ingest runs the jobs.

// ingestRoutes are uploads, audio replacement and takedowns.
func (s *Server) ingestRoutes() []route {
	return []route{
		{"POST", "/songs", authRequired, s.uploadSong},
		{"PUT", "/songs/{id}/audio", authRequired, s.replaceAudio},
		{"DELETE", "/songs/{id}", authRequired, s.takeDownSong},
	}
}

// Upload form limits.
const (
	maxFieldBytes  = 8 << 10 // one text field of the multipart form
	maxUploadParts = 16
	// uploadHold is how long a new job waits for its original to be
	// stored before it may run anyway (and fail for want of it).
	uploadHold = 10 * time.Minute
)

// uploadForm is a parsed multipart upload: the text fields and the audio
// file, spooled to a temporary file.
type uploadForm struct {
	leave    func() // leaves the upload gate
	fields   map[string]string
	file     *os.File // nil when no file part came
	filename string
	size     int64
	sha256   string
}

func (f *uploadForm) close() {
	if f.file != nil {
		f.file.Close()
		os.Remove(f.file.Name())
	}
	f.leave()
}

// readUpload streams a multipart/form-data body, once the upload gate
// admits p's upload (Config.UploadsPerUser, UploadsTotal, SpoolMaxBytes):
// text fields (each at most maxFieldBytes, only the allowed names, each
// once) and one file part "file", written to a temporary file and hashed
// as it arrives. The file may be at most Config.UploadMaxBytes (413 past
// it, with nothing kept). The caller must close the form, which also
// leaves the gate.
//
// early, when not nil, sees the form fields sent before the file part
// when that part begins, and its error ends the upload before the file is
// spooled (a client that sends fields first learns of a bad field without
// sending the audio).
func (s *Server) readUpload(w http.ResponseWriter, r *http.Request, p principal, early func(fields map[string]string) error, allowed ...string) (*uploadForm, error) {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" {
		return nil, newError(kindUnsupportedMedia, "unsupported_media_type", "Send the upload as multipart/form-data with the audio in a part named file.")
	}
	limit := s.cfg.UploadMaxBytes
	// Capacity first: uploads in progress per account and in all, and the
	// spool bytes they may take (the body's length when it is declared).
	reserve := limit
	if r.ContentLength >= 0 {
		reserve = min(r.ContentLength, limit)
	}
	leave, err := s.uploads.enter(p.UserID, reserve)
	if err != nil {
		return nil, err
	}
	// The server's read and write timeouts suit small API bodies; an
	// upload gets time for a slow link (1 MB/s at least).
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(time.Minute + time.Duration(limit>>20)*time.Second)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline.Add(2 * time.Minute))
	r.Body = http.MaxBytesReader(w, r.Body, limit+maxUploadParts*maxFieldBytes+64<<10)
	mr, err := r.MultipartReader()
	if err != nil {
		leave()
		return nil, &apiError{kind: kindInvalid, code: "invalid_multipart", detail: "The multipart body cannot be read.", cause: err}
	}
	f := &uploadForm{fields: map[string]string{}, leave: leave}
	tooLarge := newError(kindTooLarge, "upload_too_large", "The audio file is larger than %d bytes.", limit)
	fail := func(err error) (*uploadForm, error) {
		f.close()
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, tooLarge
		}
		return nil, err
	}
	for parts := 0; ; parts++ {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fail(&apiError{kind: kindInvalid, code: "invalid_multipart", detail: "The multipart body cannot be read.", cause: err})
		}
		if parts >= maxUploadParts {
			return fail(newError(kindInvalid, "too_many_parts", "The form has more than %d parts.", maxUploadParts))
		}
		name := part.FormName()
		if name == "file" {
			if f.file != nil {
				return fail(invalidField("file", "duplicate_field", "Send one file."))
			}
			if early != nil {
				if err := early(f.fields); err != nil {
					return fail(err)
				}
			}
			fn := part.FileName()
			if fn == "" {
				return fail(invalidField("file", "not_a_file", "The file part needs a filename."))
			}
			// FileName already drops directories; look at what was sent.
			raw := rawFilename(part.Header.Get("Content-Disposition"))
			if strings.ContainsAny(fn, "\r\n") || strings.ContainsAny(raw, "\r\n") {
				return fail(invalidField("file", "invalid_filename", "The filename must not contain line breaks (CR or LF)."))
			}
			if strings.ContainsAny(raw, `/\`) || strings.ContainsRune(raw, 0) || raw == ".." || raw == "." {
				return fail(invalidField("file", "invalid_filename", "The filename must be a plain name, without folders."))
			}
			if e := checkText("file", fn, true, 255, false); e != nil {
				return fail(invalidField("file", "invalid_filename", "The filename must be at most 255 printable characters."))
			}
			tmp, err := os.CreateTemp(s.cfg.UploadDir, "riff-upload-*")
			if err != nil {
				return fail(fmt.Errorf("upload: %w", err))
			}
			f.file, f.filename = tmp, fn
			h := sha256.New()
			n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(part, limit+1))
			if err != nil {
				return fail(&apiError{kind: kindInvalid, code: "invalid_multipart", detail: "The upload was cut short.", cause: err})
			}
			if n > limit {
				return fail(tooLarge)
			}
			f.size, f.sha256 = n, hex.EncodeToString(h.Sum(nil))
			continue
		}
		known := false
		for _, a := range allowed {
			known = known || a == name
		}
		if !known {
			return fail(invalidField(name, "unknown_field", "Unknown form field %q.", name))
		}
		if _, dup := f.fields[name]; dup {
			return fail(invalidField(name, "duplicate_field", "The field %s is sent twice.", name))
		}
		b, err := io.ReadAll(io.LimitReader(part, maxFieldBytes+1))
		if err != nil {
			return fail(&apiError{kind: kindInvalid, code: "invalid_multipart", detail: "The multipart body cannot be read.", cause: err})
		}
		if len(b) > maxFieldBytes {
			return fail(invalidField(name, "too_long", "%s is longer than %d bytes.", name, maxFieldBytes))
		}
		f.fields[name] = string(b)
	}
	if f.file == nil {
		return fail(invalidField("file", "required", "Send the audio in a part named file."))
	}
	if f.size == 0 {
		return fail(invalidField("file", "empty_file", "The file is empty."))
	}
	return f, nil
}

// rawFilename is the filename parameter of a Content-Disposition as sent.
func rawFilename(cd string) string {
	_, params, err := mime.ParseMediaType(cd)
	if err != nil {
		return ""
	}
	return params["filename"]
}

// checkedAudio is an upload that was sniffed, probed and decoded.
type checkedAudio struct {
	format audioFormat
	probe  *packager.Probe
}

// checkAudio makes sure the spooled file is audio we can package: its
// bytes say a known format, ffprobe accepts it, and it decodes to the end
// (a truncated file probes fine but would fail the job later) holding no
// more than the packager's MaxDuration (-max-duration). The probe it
// returns carries the duration the decode measured, not the header's.
func (s *Server) checkAudio(ctx context.Context, f *uploadForm) (checkedAudio, error) {
	format, err := sniffUpload(f.file, f.size)
	if err != nil {
		return checkedAudio{}, &apiError{kind: kindUnsupportedMedia, code: "unsupported_format", field: "file",
			detail: "The file is not audio in a format we accept (FLAC, WAV, AIFF, MP3, M4A/MP4, Ogg).", cause: err}
	}
	s.obs.Metrics.GetOrCreateCounter(fmt.Sprintf(`riff_uploads_total{format=%q}`, format.name)).Inc()
	if format == formatADTS {
		// The packager reads AAC in MP4 only: rewrap it (no re-encode).
		if err := s.remuxADTS(ctx, f); err != nil {
			return checkedAudio{}, err
		}
		format = formatMP4
	}
	// ffprobe and the decode are CPU work on the API's machine: at most
	// one per core at a time; the rest wait (or give up with the client).
	select {
	case s.checks <- struct{}{}:
		defer func() { <-s.checks }()
	case <-ctx.Done():
		return checkedAudio{}, ctx.Err()
	}
	pr, err := s.pk.Probe(ctx, f.file.Name())
	if err != nil {
		return checkedAudio{}, probeProblem(err)
	}
	// The decode measures what the file really holds: its duration is
	// kept, never the header's.
	held, err := s.pk.DecodeCheck(ctx, f.file.Name(), pr)
	var pe *packager.ProbeError
	switch {
	case errors.Is(err, packager.ErrUndecodable) && errors.As(err, &pe):
		return checkedAudio{}, &apiError{kind: kindInvalid, code: "undecodable", field: "file",
			detail: "The audio cannot be decoded to the end (corrupt or truncated?).", cause: err}
	case errors.Is(err, packager.ErrTooSlow) && errors.As(err, &pe):
		return checkedAudio{}, &apiError{kind: kindUnprocessable, code: "decode_timeout", field: "file",
			detail: "The audio could not be checked in time: " + pe.Reason + ".", cause: err}
	case err != nil:
		return checkedAudio{}, probeProblem(err)
	}
	measured := *pr
	measured.Duration = held
	return checkedAudio{format: format, probe: &measured}, nil
}

// remuxADTS rewraps a raw AAC (ADTS) upload into an M4A in place of the
// spooled file (packager.RemuxADTS). The upload's size and SHA-256 stay
// those of the bytes sent (duplicates are found by them).
func (s *Server) remuxADTS(ctx context.Context, f *uploadForm) error {
	out, err := os.CreateTemp(s.cfg.UploadDir, "riff-upload-*.m4a")
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	out.Close()
	if err := s.pk.RemuxADTS(ctx, f.file.Name(), out.Name()); err != nil {
		os.Remove(out.Name())
		var pe *packager.ProbeError
		switch {
		case errors.Is(err, packager.ErrTooSlow) && errors.As(err, &pe):
			return &apiError{kind: kindUnprocessable, code: "decode_timeout", field: "file", detail: "The audio could not be checked in time: " + pe.Reason + ".", cause: err}
		case errors.As(err, &pe):
			return &apiError{kind: kindInvalid, code: "undecodable", field: "file", detail: "The AAC stream cannot be read (corrupt or truncated?).", cause: err}
		}
		return err
	}
	m4a, err := os.Open(out.Name())
	if err != nil {
		os.Remove(out.Name())
		return fmt.Errorf("upload: %w", err)
	}
	f.file.Close()
	os.Remove(f.file.Name())
	f.file = m4a
	return nil
}

// probeProblem maps a packager refusal to an API error.
func probeProblem(err error) error {
	var pe *packager.ProbeError
	if !errors.As(err, &pe) {
		return err
	}
	switch {
	case errors.Is(err, packager.ErrUnsupportedFormat), errors.Is(err, packager.ErrNoAudio):
		return &apiError{kind: kindUnsupportedMedia, code: "unsupported_format", field: "file", detail: "The file is not audio we accept: " + pe.Reason + ".", cause: err}
	case errors.Is(err, packager.ErrDuration):
		return &apiError{kind: kindInvalid, code: "bad_duration", field: "file", detail: "The audio is too long or has no duration: " + pe.Reason + ".", cause: err}
	case errors.Is(err, packager.ErrTooSlow):
		return &apiError{kind: kindUnprocessable, code: "decode_timeout", field: "file", detail: "The audio could not be checked in time: " + pe.Reason + ".", cause: err}
	}
	return &apiError{kind: kindInvalid, code: "undecodable", field: "file", detail: "The audio cannot be decoded (corrupt or truncated?).", cause: err}
}

// songFields are the optional metadata fields of an upload form.
type songFields struct {
	title, genre      string
	track             int
	explicit          bool
	hasTrack, hasExpl bool
}

// readSongUpload is readUpload of a song's upload, with its fields parsed
// (parseSongFields). The caller closes the form.
func (s *Server) readSongUpload(w http.ResponseWriter, r *http.Request, p principal, early func(fields map[string]string) error, allowed ...string) (*uploadForm, songFields, error) {
	form, err := s.readUpload(w, r, p, early, allowed...)
	if err != nil {
		return nil, songFields{}, err
	}
	sf, err := parseSongFields(form.fields)
	if err != nil {
		form.close()
		return nil, songFields{}, err
	}
	return form, sf, nil
}

func parseSongFields(fields map[string]string) (songFields, error) {
	var sf songFields
	sf.title = strings.TrimSpace(fields["title"])
	if e := checkText("title", sf.title, false, 200, false); e != nil {
		return sf, e
	}
	sf.genre = strings.ToLower(strings.TrimSpace(fields["genre"]))
	if e := checkText("genre", sf.genre, false, 50, false); e != nil {
		return sf, e
	}
	if v, ok := fields["track_no"]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 999 {
			return sf, invalidField("track_no", "invalid_number", "track_no must be a whole number from 1 to 999.")
		}
		sf.track, sf.hasTrack = n, true
	}
	if v, ok := fields["explicit"]; ok {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return sf, invalidField("explicit", "invalid_boolean", "explicit must be true or false.")
		}
		sf.explicit, sf.hasExpl = b, true
	}
	return sf, nil
}

// uploadTarget checks the album_id and credits fields of an upload by p:
// the album exists and p owns its artist, and the credits follow the
// rules of parseCredits and checkCredits.
func (s *Server) uploadTarget(ctx context.Context, p principal, fields map[string]string) (store.Album, []store.NewCredit, error) {
	albumField, ok := fields["album_id"]
	if !ok {
		return store.Album{}, nil, invalidField("album_id", "required", "album_id is required.")
	}
	albumID, err := strconv.ParseInt(strings.TrimSpace(albumField), 10, 64)
	if err != nil || albumID <= 0 {
		return store.Album{}, nil, invalidField("album_id", "invalid_id", "album_id must be a positive integer.")
	}
	album, err := s.store.AlbumByID(ctx, albumID)
	if errors.Is(err, store.ErrNotFound) {
		return album, nil, &apiError{kind: kindNotFound, code: "album_not_found", field: "album_id", detail: "No such album.", cause: err}
	}
	if err != nil {
		return album, nil, err
	}
	if _, err := s.ownedArtist(ctx, p, album.ArtistID, ""); err != nil {
		return album, nil, newError(kindForbidden, "not_owner", "You may upload only to albums of an artist you own.")
	}
	credits, err := parseCredits(fields["credits"], album.ArtistID)
	if err != nil {
		return album, nil, err
	}
	if err := s.checkCredits(ctx, p, credits); err != nil {
		return album, nil, err
	}
	out := make([]store.NewCredit, len(credits))
	for i, c := range credits {
		out[i] = c.NewCredit
	}
	return album, out, nil
}

// uploadCredit is one entry of the credits form field (JSON).
type uploadCredit struct {
	ArtistID int64  `json:"artist_id"`
	Role     string `json:"role"`
}

// maxCredits bounds the credits of one song.
const maxCredits = 20

// parsedCredit is a credit to store and the form field that named it
// ("" for the primary credit added for the album's artist).
type parsedCredit struct {
	store.NewCredit
	field string
}

// parseCredits reads the credits field (JSON) of an upload to an album
// of albumArtist. The song's primary artist is always the album's artist:
// it comes first, added when the list does not start with it, and a
// primary credit naming any other artist is refused (400
// primary_not_album_artist), as is a second primary. Errors name the
// offending entry (credits[i].role, credits[i].artist_id).
func parseCredits(v string, albumArtist int64) ([]parsedCredit, error) {
	if strings.TrimSpace(v) == "" {
		return []parsedCredit{{NewCredit: store.NewCredit{ArtistID: albumArtist, Role: store.RolePrimary}}}, nil
	}
	var cs []uploadCredit
	dec := json.NewDecoder(strings.NewReader(v))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cs); err != nil || len(cs) > maxCredits {
		return nil, invalidField("credits", "invalid_credits", `credits must be a JSON array of up to %d {"artist_id": N, "role": "primary|featured|producer|composer|remixer"}.`, maxCredits)
	}
	out := make([]parsedCredit, 0, len(cs)+1)
	if len(cs) == 0 || cs[0].Role != store.RolePrimary {
		out = append(out, parsedCredit{NewCredit: store.NewCredit{ArtistID: albumArtist, Role: store.RolePrimary}})
	}
	for i, c := range cs {
		field := func(name string) string { return fmt.Sprintf("credits[%d].%s", i, name) }
		switch c.Role {
		case store.RolePrimary, store.RoleFeatured, store.RoleProducer, store.RoleComposer, store.RoleRemixer:
		default:
			return nil, invalidField(field("role"), "invalid_enum", "%s %q is not one of primary, featured, producer, composer, remixer.", field("role"), c.Role)
		}
		if c.ArtistID <= 0 {
			return nil, invalidField(field("artist_id"), "invalid_id", "%s must be a positive integer.", field("artist_id"))
		}
		if c.Role == store.RolePrimary && (i > 0 || c.ArtistID != albumArtist) {
			return nil, invalidField(field("artist_id"), "primary_not_album_artist",
				"A song's primary artist is its album's artist (%d); credit other artists as featured, producer, composer or remixer.", albumArtist)
		}
		out = append(out, parsedCredit{NewCredit: store.NewCredit{ArtistID: c.ArtistID, Role: c.Role}, field: field("artist_id")})
	}
	return out, nil
}

// checkCredits refuses credits naming an artist that does not exist (400
// unknown_artist) or that p does not own (403 credit_not_allowed): an
// artist is credited on a song only by its own owner's upload (or an
// admin's), so nobody can put their song on someone else's page. (There
// is no credit that waits for the other owner's acceptance.)
func (s *Server) checkCredits(ctx context.Context, p principal, cs []parsedCredit) error {
	for _, c := range cs {
		if c.field == "" {
			continue // the album's artist, already checked
		}
		a, err := s.store.ArtistByID(ctx, c.ArtistID)
		if errors.Is(err, store.ErrNotFound) {
			return invalidField(c.field, "unknown_artist", "%s: there is no artist %d.", c.field, c.ArtistID)
		}
		if err != nil {
			return err
		}
		if a.OwnerUserID != p.UserID && p.Role != store.RoleAdmin {
			return &apiError{kind: kindForbidden, code: "credit_not_allowed", field: c.field,
				detail: fmt.Sprintf("%s: only the owner of artist %d may credit it on a song.", c.field, c.ArtistID)}
		}
	}
	return nil
}

// ingestReady refuses uploads when this catalogd has no blob store or
// packager.
func (s *Server) ingestReady() error {
	if s.blob == nil || s.pk == nil {
		return newError(kindUnavailable, "uploads_unavailable", "This server does not take uploads.")
	}
	return nil
}

// uploadSong is POST /songs: an artist uploads a new song to one of their
// albums. It answers 202 with the song in status processing; a packaging
// job publishes it.
func (s *Server) uploadSong(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := s.ingestReady(); err != nil {
		return err
	}
	ctx := r.Context()
	// Refuse non-artists before reading a large body.
	if p.Role != store.RoleAdmin {
		owned, err := s.store.ArtistsOwnedBy(ctx, p.UserID)
		if err != nil {
			return err
		}
		if len(owned) == 0 {
			return newError(kindForbidden, "not_artist", "Only artists may upload songs; create an artist profile first (POST /artists).")
		}
	}
	// The album and credits are checked before the file is spooled when
	// the form sends them first, and again (cheap reads) after.
	early := func(fields map[string]string) error {
		if _, ok := fields["album_id"]; !ok {
			return nil
		}
		_, _, err := s.uploadTarget(ctx, p, fields)
		return err
	}
	form, sf, err := s.readSongUpload(w, r, p, early, "title", "album_id", "track_no", "genre", "explicit", "credits")
	if err != nil {
		return err
	}
	defer form.close()
	album, credits, err := s.uploadTarget(ctx, p, form.fields)
	if err != nil {
		return err
	}
	albumID := album.ID
	audio, err := s.checkAudio(ctx, form)
	if err != nil {
		return err
	}
	// Form fields win over the file's tags.
	tags := audio.probe.Tags
	title := firstNonEmpty(sf.title, tags.Title, strings.TrimSuffix(form.filename, path.Ext(form.filename)), "Untitled")
	if e := checkText("title", title, true, 200, false); e != nil {
		title = "Untitled"
	}
	track := 1
	if sf.hasTrack {
		track = sf.track
	} else if tags.Track > 0 && tags.Track < 1000 {
		track = tags.Track
	}
	genre := firstNonEmpty(sf.genre, strings.ToLower(tags.Genre))
	if checkText("genre", genre, false, 50, false) != nil {
		genre = ""
	}
	nu := s.newUpload(ctx, form, audio, album.ArtistID)
	nu.Title, nu.Genre, nu.TrackNumber, nu.Explicit = title, genre, track, sf.explicit
	so, up, err := s.store.CreateSongUpload(ctx, store.NewSong{AlbumID: albumID, Title: title, TrackNumber: track,
		Genre: genre, Explicit: sf.explicit, Credits: credits}, nu)
	if err != nil {
		return duplicateProblem(w, err)
	}
	if err := s.storeOriginal(ctx, form, up); err != nil {
		return err
	}
	// The first upload's embedded art becomes the cover of an album
	// without one (covers.go).
	so.AlbumCoverHash = s.embeddedCover(ctx, form.file.Name(), audio.probe, album)
	so.Status = store.StatusProcessing
	v := s.viewSong(so)
	v.Processing = &jobView{Version: up.Version, State: store.JobQueued, Stage: "queued"}
	w.Header().Set("Location", "/songs/"+itoa(so.ID))
	return writeJSON(w, http.StatusAccepted, v)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v = strings.TrimSpace(v); v != "" {
			return v
		}
	}
	return ""
}

func (s *Server) newUpload(ctx context.Context, form *uploadForm, audio checkedAudio, artistID int64) store.NewUpload {
	return store.NewUpload{ArtistID: artistID, SHA256: form.sha256, Ext: audio.format.ext, SizeBytes: form.size,
		Container: audio.probe.Container, Codec: audio.probe.Codec, DurationMS: audio.probe.Duration.Milliseconds(),
		Bitrate: audio.probe.Bitrate, Probe: ingest.EncodeProbe(audio.probe), MaxAttempts: s.cfg.JobAttempts, Hold: uploadHold,
		TraceParent: obs.TraceParent(ctx)} // the packaging job continues the upload's trace
}

// duplicateProblem answers a duplicate upload as 409 naming the existing
// song (Location header and detail).
func duplicateProblem(w http.ResponseWriter, err error) error {
	var dup *store.DuplicateUploadError
	if errors.As(err, &dup) {
		w.Header().Set("Location", "/songs/"+itoa(dup.SongID))
		return &apiError{kind: kindConflict, code: "duplicate_upload", cause: err,
			detail: fmt.Sprintf("You uploaded this file before: it is song %d (/songs/%d).", dup.SongID, dup.SongID)}
	}
	if errors.Is(err, store.ErrConflict) {
		return &apiError{kind: kindConflict, code: "song_busy", detail: "The song cannot take new audio now (taken down, or another upload is in flight).", cause: err}
	}
	return err
}

// storeOriginal copies the spooled upload to its originals/ key and lets
// its job run; on failure it forgets the upload again.
func (s *Server) storeOriginal(ctx context.Context, form *uploadForm, up store.Upload) error {
	if _, err := form.file.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	_, err := s.blob.Put(ctx, up.BlobKey, form.file, blob.PutOptions{ContentType: "application/octet-stream"})
	if err == nil {
		err = s.store.ReleaseUpload(ctx, up.ID)
	}
	if err != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if derr := s.blob.Delete(cctx, up.BlobKey); derr != nil {
			err = errors.Join(err, derr)
		}
		if derr := s.store.DiscardUpload(cctx, up); derr != nil {
			err = errors.Join(err, derr)
		}
		return fmt.Errorf("upload: storing the original: %w", err)
	}
	s.jobs.Kick()
	return nil
}

// replaceAudio is PUT /songs/{id}/audio: the owner sends new audio for a
// song; it is published as the next version, and the current version
// keeps playing until then. Optional fields (title, track_no, genre,
// explicit) replace the song's at the switch.
func (s *Server) replaceAudio(w http.ResponseWriter, r *http.Request, p principal) error {
	if err := s.ingestReady(); err != nil {
		return err
	}
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	so, err := s.ownedSong(ctx, p, id, "replace its audio")
	if err != nil {
		return err
	}
	if so.Status == store.StatusTakenDown {
		return newError(kindConflict, "taken_down", "The song is taken down.")
	}
	form, sf, err := s.readSongUpload(w, r, p, nil, "title", "track_no", "genre", "explicit")
	if err != nil {
		return err
	}
	defer form.close()
	audio, err := s.checkAudio(ctx, form)
	if err != nil {
		return err
	}
	nu := s.newUpload(ctx, form, audio, so.AlbumArtistID)
	nu.Title, nu.Genre, nu.TrackNumber, nu.Explicit = firstNonEmpty(sf.title, so.Title), firstNonEmpty(sf.genre, so.Genre), so.TrackNumber, so.Explicit
	if sf.hasTrack {
		nu.TrackNumber = sf.track
	}
	if sf.hasExpl {
		nu.Explicit = sf.explicit
	}
	up, err := s.store.CreateReplacement(ctx, id, nu)
	if err != nil {
		return duplicateProblem(w, err)
	}
	if err := s.storeOriginal(ctx, form, up); err != nil {
		return err
	}
	v := s.viewSong(so)
	v.Processing = &jobView{Version: up.Version, State: store.JobQueued, Stage: "queued"}
	w.Header().Set("Location", "/songs/"+itoa(so.ID))
	return writeJSON(w, http.StatusAccepted, v)
}

// ownedSong returns song id when p owns its artist (or is an admin). To
// anyone else a song that is not ready is 404, like an unknown one (its
// existence is not theirs to learn), and a ready one is 403 not_owner:
// "Only the owner of the song's artist may <action>."
func (s *Server) ownedSong(ctx context.Context, p principal, id int64, action string) (store.Song, error) {
	so, err := s.store.SongByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return so, newError(kindNotFound, "not_found", "No such song.")
	}
	if err != nil {
		return so, err
	}
	if _, err := s.ownedArtist(ctx, p, so.AlbumArtistID, ""); err != nil {
		if so.Status != store.StatusReady {
			return so, newError(kindNotFound, "not_found", "No such song.")
		}
		return so, newError(kindForbidden, "not_owner", "Only the owner of the song's artist may %s.", action)
	}
	return so, nil
}

// takeDownSong is DELETE /songs/{id}: the owner (or an admin) takes a song
// down. No playback URL is minted for it any more, edges are purged, and
// its media is collected once the URLs already out have expired.
func (s *Server) takeDownSong(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if _, err := s.ownedSong(ctx, p, id, "take it down"); err != nil {
		return err
	}
	if err := s.store.TakeDown(ctx, id, s.gcTime()); err != nil {
		return err
	}
	s.purged()
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// gcTime is when media superseded now may be deleted: no playback token
// minted before now names it after its TTL, plus Config.GCDelay for clock
// skew.
func (s *Server) gcTime() time.Time {
	return s.now().Add(s.cfg.PlaybackTTL + s.cfg.GCDelay)
}
