package edge

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/valyala/fasthttp"

	"riff/edge/cache"
	"riff/edge/peer"
	"riff/internal/blobkey"
	"riff/internal/playtoken"
)

// AdminHandler serves the admin side: /metrics, /healthz, /readyz (see
// package obs) and POST /purge.
//
// # Purge
//
//	POST /purge
//	Authorization: Bearer <purge token>
//	{"prefixes": ["artists/1/albums/2/", "artists/7/albums/3/songs/9/"]}
//
// answers 200 {"purged":[{"prefix":"artists/1/albums/2/","generation":12},…]}.
//
// A prefix is an artist, album or song folder (2, 4 or 6 segments; the
// trailing slash is optional and added), or "" / "artists/" for
// everything. Purge works by generations (see package cache): O(1) per
// prefix, in effect for every request that starts after the answer, and a
// fetch that began before it cannot fill the new generation.
//
// The token must be a playtoken of type purge whose pfx covers every prefix
// (on segment boundaries: pfx "artists/1/" covers "artists/1/albums/2/").
// Purging everything needs pfx "artists/", which covers every key the edge
// serves. The request is all or nothing: one bad or uncovered prefix and
// nothing is purged. Answers: 401 without a bearer token, 403 for a token
// that is refused or does not cover a prefix, 400 for a bad body.
func (s *Server) AdminHandler(ctx *fasthttp.RequestCtx) {
	defer func() {
		if p := recover(); p != nil {
			s.obs.Logger.Error("admin panic", "panic", fmt.Sprint(p))
			ctx.ResetBody()
			s.jsonError(ctx, fasthttp.StatusInternalServerError, "internal error")
		}
	}()
	if s.obs.FastAdmin(ctx) {
		return
	}
	if s.cfg.Pprof && bytes.HasPrefix(ctx.Path(), []byte("/debug/pprof/")) {
		s.pprof(ctx)
		return
	}
	if s.peers != nil && peer.IsRequest(ctx.Path()) {
		s.servePeer(ctx)
		return
	}
	if !bytes.Equal(ctx.Path(), []byte("/purge")) {
		s.jsonError(ctx, fasthttp.StatusNotFound, "not found")
		return
	}
	if !ctx.IsPost() {
		ctx.Response.Header.Set("Allow", "POST")
		s.jsonError(ctx, fasthttp.StatusMethodNotAllowed, "method not allowed")
		return
	}
	// catalogd's purge delivery sends its traceparent: this span joins it.
	s.obs.TraceFast(ctx, "POST /purge", s.purge)
}

type purgeRequest struct {
	Prefixes []string `json:"prefixes"`
}

type purgedPrefix struct {
	Prefix     string `json:"prefix"`
	Generation uint64 `json:"generation"`
}

type purgeResponse struct {
	Purged []purgedPrefix `json:"purged"`
}

// maxPurgePrefixes bounds one purge request.
const maxPurgePrefixes = 1000

func (s *Server) purge(ctx *fasthttp.RequestCtx) {
	auth := ctx.Request.Header.Peek("Authorization")
	token, ok := bytes.CutPrefix(auth, []byte("Bearer "))
	if !ok || len(bytes.TrimSpace(token)) == 0 {
		s.countRefusal(reasonNoAuth)
		ctx.Response.Header.Set("WWW-Authenticate", `Bearer realm="riff-edge"`)
		s.jsonError(ctx, fasthttp.StatusUnauthorized, "purge needs a bearer token")
		return
	}
	claims, err := s.verifier.Verify(bytes.TrimSpace(token), playtoken.TypePurge)
	if err != nil {
		s.countRefusal(string(playtoken.ReasonOf(err)))
		s.jsonError(ctx, fasthttp.StatusForbidden, "forbidden")
		return
	}
	var req purgeRequest
	dec := json.NewDecoder(bytes.NewReader(ctx.PostBody()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil || dec.More() {
		s.jsonError(ctx, fasthttp.StatusBadRequest, "body must be {\"prefixes\": [...]}")
		return
	}
	if len(req.Prefixes) == 0 || len(req.Prefixes) > maxPurgePrefixes {
		s.jsonError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("want 1 to %d prefixes", maxPurgePrefixes))
		return
	}
	prefixes := make([]string, len(req.Prefixes))
	for i, p := range req.Prefixes {
		np, ok := normalizePurgePrefix(p)
		if !ok {
			s.jsonError(ctx, fasthttp.StatusBadRequest, fmt.Sprintf("prefix %q is not an artist, album or song folder", p))
			return
		}
		if !coversPrefix(claims, np) {
			s.countRefusal(reasonPrefix)
			s.jsonError(ctx, fasthttp.StatusForbidden, "forbidden")
			return
		}
		prefixes[i] = np
	}
	gens, err := s.purgePrefixes(prefixes)
	if errors.Is(err, cache.ErrPrefix) {
		s.jsonError(ctx, fasthttp.StatusBadRequest, "bad prefix")
		return
	} else if err != nil {
		s.obs.Logger.ErrorContext(ctx, "purge not durable", "prefixes", prefixes, "err", err)
		s.jsonError(ctx, fasthttp.StatusInternalServerError, "internal error")
		return
	}
	resp := purgeResponse{Purged: make([]purgedPrefix, len(prefixes))}
	for i, p := range prefixes {
		resp.Purged[i] = purgedPrefix{Prefix: p, Generation: gens[i]}
	}
	s.obs.Logger.InfoContext(ctx, "purged", "prefixes", prefixes, "subject", claims.Subject)
	body, _ := json.Marshal(resp)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}

// normalizePurgePrefix returns the canonical form of a purge prefix
// (blobkey.PurgeFolder), except that everything is "", the prefix
// cache.Generations takes for it.
func normalizePurgePrefix(p string) (string, bool) {
	np, ok := blobkey.PurgeFolder(p)
	if np == blobkey.Root {
		np = ""
	}
	return np, ok
}

// coversPrefix reports whether a purge token's claims cover prefix ("" is
// everything).
func coversPrefix(c playtoken.Claims, prefix string) bool {
	own := strings.TrimSuffix(c.Prefix, "/")
	if prefix == "" {
		return own+"/" == blobkey.Root
	}
	p := strings.TrimSuffix(prefix, "/")
	return p == own || c.Allows(p)
}

// pprof serves /debug/pprof/profile?seconds=N (CPU, default 10 s, at most
// 60) and /debug/pprof/heap, for Config.Pprof. It does not use
// net/http/pprof, whose import would register handlers on
// http.DefaultServeMux for every server in the binary.
func (s *Server) pprof(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/octet-stream")
	switch string(ctx.Path()) {
	case "/debug/pprof/profile":
		secs := ctx.QueryArgs().GetUintOrZero("seconds")
		if secs <= 0 {
			secs = 10
		}
		var buf bytes.Buffer
		if err := pprof.StartCPUProfile(&buf); err != nil {
			s.jsonError(ctx, fasthttp.StatusConflict, "a CPU profile is already running")
			return
		}
		time.Sleep(time.Duration(min(secs, 60)) * time.Second)
		pprof.StopCPUProfile()
		ctx.SetBody(buf.Bytes())
	case "/debug/pprof/heap":
		pprof.Lookup("heap").WriteTo(ctx, 0)
	default:
		s.jsonError(ctx, fasthttp.StatusNotFound, "not found")
	}
}

func (s *Server) jsonError(ctx *fasthttp.RequestCtx, status int, msg string) {
	body, _ := json.Marshal(struct {
		Error string `json:"error"`
	}{msg})
	ctx.SetStatusCode(status)
	ctx.SetContentType("application/json")
	ctx.SetBody(append(body, '\n'))
}
