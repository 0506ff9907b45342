// Package web is Riff's web player: the listener and artist app that
// catalogd serves at /.
//
// The sources are in src/ (plain modern JavaScript and CSS, no framework)
// and are bundled by esbuild (build.mjs, `make web` or `npm run build`)
// into dist/: index.html and assets/NAME-HASH.EXT, every asset name
// carrying a hash of its content so browsers may cache it for good. The
// built dist/ is committed, so `go build` and `go test` work on a fresh
// clone without node; TestBundleUpToDate fails when it is stale.
//
// The app routes on the URL fragment (/#/song/12), so no page path can
// shadow an API path. e2e/e2e.mjs drives it in headless Chromium against a
// real `riff dev` stack (TestEndToEnd).
package web

import (
	"embed"
	"io/fs"
)

//go:embed dist
var dist embed.FS

// Files returns the built player: index.html and assets/…. It is safe
// for concurrent use.
func Files() fs.FS {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // "dist" is a valid path: cannot happen
	}
	return sub
}
