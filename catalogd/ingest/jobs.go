package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"go.opentelemetry.io/otel/attribute"

	"riff/catalogd/store"
	"riff/internal/blob"
	"riff/internal/blobkey"
	"riff/internal/obs"
	"riff/packager"
)

// packageJob packages an upload into its version folder and publishes
// it. It is idempotent: an attempt first removes whatever an earlier,
// interrupted attempt left in the folder (the version is not current, so
// nothing plays from it), and publishing the same version twice changes
// nothing.
func (w *Worker) packageJob(ctx context.Context, j store.Job, owner string) error {
	up, err := w.store.UploadByID(ctx, j.UploadID)
	if err != nil {
		return permanentError{err}
	}
	so, err := w.store.SongByID(ctx, j.SongID)
	if err != nil {
		return permanentError{err}
	}
	if so.CurrentVersion >= j.Version || so.Status == store.StatusTakenDown {
		_, err := w.store.PublishUpload(ctx, j.ID, owner, store.Published{}, w.gcTime())
		return err
	}
	prefix := blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, j.Version)
	prog := &progressWriter{w: w, ctx: ctx, job: j.ID, owner: owner}
	defer prog.endEncodes()
	prog.set("fetch", 1, true)

	fctx, span := w.tracer.StartSpan(ctx, "fetch original")
	src, err := w.fetchOriginal(fctx, up)
	obs.EndSpan(span, err)
	if err != nil {
		return err
	}
	defer os.Remove(src)
	if err := w.clearPrefix(ctx, prefix); err != nil {
		return err
	}
	// The probe made when the upload arrived travels with it; an upload
	// stored before probes were kept is probed here.
	pr, _ := DecodeProbe(up.Probe)
	pctx, span := w.tracer.StartSpan(ctx, "package", attribute.String("blob.prefix", prefix))
	prog.span = pctx
	res, err := w.pk.PackageProbed(ctx, src, pr, w.blob, prefix, prog.packager)
	prog.endEncodes()
	obs.EndSpan(span, err)
	if err != nil {
		// The upload decoded once already, so an ffmpeg failure now
		// (ErrUndecodable) may be the machine's (killed, out of memory,
		// disk full): retried. What the probe refuses cannot change, and
		// an encode over its time limit (which grows with the audio the
		// file really holds) is the input's doing: not retried.
		if errors.Is(err, packager.ErrUnsupportedFormat) || errors.Is(err, packager.ErrNoAudio) ||
			errors.Is(err, packager.ErrDuration) || errors.Is(err, packager.ErrTooSlow) {
			return permanentError{err}
		}
		return fmt.Errorf("package %s: %w", prefix, err)
	}
	rs := make([]store.Rendition, 0, len(res.Renditions))
	for _, r := range res.Renditions {
		rs = append(rs, store.Rendition{Format: r.Format, BitrateKbps: r.Kbps, BlobKey: r.Key, SizeBytes: r.Size})
	}
	// The duration published is what was encoded (the AAC ladder's
	// presented duration, else the measured probe's), never a header's.
	_, span = w.tracer.StartSpan(ctx, "publish")
	old, err := w.store.PublishUpload(ctx, j.ID, owner, store.Published{Renditions: rs, DurationMS: res.Duration.Milliseconds()}, w.gcTime())
	obs.EndSpan(span, err)
	if err != nil {
		return err
	}
	if old > 0 {
		w.purged()
	}
	return nil
}

// fetchOriginal copies an upload's original from the blob store to a
// temporary file for ffmpeg.
func (w *Worker) fetchOriginal(ctx context.Context, up store.Upload) (string, error) {
	rc, _, err := w.blob.Get(ctx, up.BlobKey, nil)
	if errors.Is(err, blob.ErrNotFound) {
		return "", permanentError{errors.New("the uploaded file was never stored (the upload was interrupted); upload it again")}
	}
	if err != nil {
		return "", fmt.Errorf("fetch original: %w", err)
	}
	defer rc.Close()
	f, err := os.CreateTemp(w.cfg.TempDir, "riff-original-*")
	if err != nil {
		return "", fmt.Errorf("fetch original: %w", err)
	}
	if _, err := io.Copy(f, rc); err != nil {
		f.Close()
		os.Remove(f.Name())
		return "", fmt.Errorf("fetch original: %w", err)
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return "", fmt.Errorf("fetch original: %w", err)
	}
	return f.Name(), nil
}

// clearPrefix deletes every object under prefix.
func (w *Worker) clearPrefix(ctx context.Context, prefix string) error {
	var keys []string
	for info, err := range w.blob.List(ctx, prefix) {
		if err != nil {
			return fmt.Errorf("list %s: %w", prefix, err)
		}
		keys = append(keys, info.Key)
	}
	for _, k := range keys {
		if err := w.blob.Delete(ctx, k); err != nil {
			return fmt.Errorf("delete %s: %w", k, err)
		}
	}
	return nil
}

// gcJob deletes a superseded or taken-down version's objects, then drops
// its renditions and purges its folder at the edges. A version that is
// current again is kept.
func (w *Worker) gcJob(ctx context.Context, j store.Job, owner string) error {
	so, err := w.store.SongByID(ctx, j.SongID)
	if err != nil {
		return permanentError{err}
	}
	if so.Status != store.StatusTakenDown && so.CurrentVersion == j.Version {
		return w.store.FinishJob(ctx, j.ID, owner, "kept")
	}
	if err := w.clearPrefix(ctx, blobkey.VersionFolder(so.AlbumArtistID, so.AlbumID, so.ID, j.Version)); err != nil {
		return err
	}
	if err := w.store.CompleteGC(ctx, j.ID, owner); err != nil {
		return err
	}
	w.purged()
	return nil
}
