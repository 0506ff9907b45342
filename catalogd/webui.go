package catalogd

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"strings"
	"time"

	"riff/catalogd/web"
)

// webUI serves the embedded web player (package web): index.html at /
// and its content-hashed assets under /assets/. API routes are matched
// first; the player routes on the URL fragment, so it never needs any
// other path.
type webUI struct {
	files     fs.FS
	index     []byte
	indexETag string
	csp       string
}

// newWebUI reads the embedded bundle. edgeURLs are the only origins besides
// catalogd's own that the player may load media from and connect to.
func newWebUI(edgeURLs ...string) (*webUI, error) {
	files := web.Files()
	index, err := fs.ReadFile(files, "index.html")
	if err != nil {
		return nil, fmt.Errorf("catalogd: web player: %w", err)
	}
	sum := sha256.Sum256(index)
	return &webUI{files: files, index: index, indexETag: `"` + hex.EncodeToString(sum[:8]) + `"`,
		csp: contentSecurityPolicy(edgeURLs...)}, nil
}

// contentSecurityPolicy allows scripts, styles and fonts from catalogd
// only, images from catalogd and the edge (album covers), and media and
// fetches from catalogd and the edge (hls.js fetches playlists and
// segments, then plays them from blob: URLs).
func contentSecurityPolicy(edgeURLs ...string) string {
	edge := ""
	for _, e := range edgeURLs {
		if u, err := url.Parse(e); err == nil && u.Host != "" {
			edge += " " + u.Scheme + "://" + u.Host
		}
	}
	return "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:" + edge + "; font-src 'self'" +
		"; media-src 'self' blob:" + edge + "; connect-src 'self'" + edge +
		"; worker-src 'none'; object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
}

// webHeaders sets the headers every player response carries.
func (ui *webUI) webHeaders(h http.Header) {
	h.Set("Content-Security-Policy", ui.csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
}

// serveIndex answers GET and HEAD / with index.html, revalidated on every
// load so a new release is picked up at once.
func (s *Server) serveIndex(w http.ResponseWriter, r *http.Request) {
	ui := s.web
	h := w.Header()
	ui.webHeaders(h)
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", ui.indexETag)
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(ui.index))
}

// assetType returns the Content-Type of a file of the bundle by its
// extension, and false for extensions the bundle does not have.
func assetType(ext string) (string, bool) {
	switch ext {
	case ".js":
		return "text/javascript; charset=utf-8", true
	case ".css":
		return "text/css; charset=utf-8", true
	case ".svg":
		return "image/svg+xml", true
	case ".png":
		return "image/png", true
	case ".woff2":
		return "font/woff2", true
	}
	return "", false
}

// serveAsset answers GET and HEAD /assets/{name}. Asset names carry a
// hash of their content, so they are cached as immutable.
func (s *Server) serveAsset(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ctype, ok := assetType(path.Ext(name))
	var data []byte
	if ok && fs.ValidPath(name) && !strings.HasPrefix(name, ".") {
		var err error
		data, err = fs.ReadFile(s.web.files, "assets/"+name)
		ok = err == nil
	}
	if !ok {
		s.writeError(w, r, newError(kindNotFound, "route_not_found", "No such route."))
		return
	}
	h := w.Header()
	s.web.webHeaders(h)
	h.Set("Content-Type", ctype)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(data))
}
