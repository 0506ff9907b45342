# Riff. The two commands a newcomer needs: `make run` and `make test`.
GO      ?= go
BIN     := bin/riff
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: all build test replicas run lint bench bench-compare clean deps tools-go tools-media web tools-web s3server

all: build

# tools-go: Go must be on PATH (the module says which version).
tools-go:
	@command -v $(GO) >/dev/null 2>&1 || { echo "riff needs Go 1.26 or newer on PATH: https://go.dev/doc/install (on these machines: export PATH=\$$PATH:/usr/local/go/bin)"; exit 1; }

# tools-media: ffmpeg and ffprobe, installed with apt-get when we are root on Debian/Ubuntu.
tools-media:
	@if ! command -v ffmpeg >/dev/null 2>&1 || ! command -v ffprobe >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "ffmpeg/ffprobe missing: installing Debian's ffmpeg with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ffmpeg >/dev/null || exit 1; \
	  else \
	    echo "riff needs ffmpeg and ffprobe on PATH: install them (Debian/Ubuntu: sudo apt-get install ffmpeg; macOS: brew install ffmpeg)"; exit 1; \
	  fi; \
	fi

# The web player (catalogd/web): its built bundle is committed, so Go alone
# builds Riff; with node on PATH, `make build` rebuilds it from src/ first.
WEB := catalogd/web
$(WEB)/node_modules/.package-lock.json: $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund
	@touch $@

# The Subsonic client test (dev/subsonic_test.go): subsonic-api and the
# schema validator it drives from node.
SUBSONIC_CLIENT := dev/testdata/subsonic
$(SUBSONIC_CLIENT)/node_modules/.package-lock.json: $(SUBSONIC_CLIENT)/package-lock.json
	cd $(SUBSONIC_CLIENT) && npm ci --no-audit --no-fund
	@touch $@

web:
	@if command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1; then \
	  $(MAKE) --no-print-directory $(WEB)/node_modules/.package-lock.json && cd $(WEB) && node build.mjs >/dev/null; \
	else \
	  echo "node/npm not found: using the committed web player bundle in $(WEB)/dist"; \
	fi

# tools-web: what the web player's and the Subsonic client's tests need:
# node and npm, Debian's chromium (apt-get when we are root on
# Debian/Ubuntu) and `npm ci` in both.
tools-web:
	@pkgs=""; command -v chromium >/dev/null 2>&1 || pkgs="chromium"; \
	command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || pkgs="$$pkgs nodejs npm"; \
	if [ -n "$$pkgs" ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "missing for the web player's tests:$$pkgs; installing Debian's packages with apt-get"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$pkgs >/dev/null || exit 1; \
	  else \
	    echo "the web player's tests need node 20+, npm and chromium on PATH (Debian/Ubuntu: sudo apt-get install nodejs npm chromium)"; exit 1; \
	  fi; \
	fi
	@$(MAKE) --no-print-directory $(WEB)/node_modules/.package-lock.json $(SUBSONIC_CLIENT)/node_modules/.package-lock.json

deps: tools-go tools-media
	$(GO) mod download

build: tools-go web
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/riff

# run: everything on loopback with SQLite, a local blob folder and demo content.
run: build tools-media
	./$(BIN) dev

# s3server: the real S3 server the S3 tests run (versitygw, pinned in
# internal/s3server): built once with `go install` into the user's cache
# folder (~/.cache/riff/versitygw-VERSION), reused after that. A cold build
# takes a few minutes; see docs/operations.md.
s3server: tools-go
	@GO=$(GO) internal/s3server/build.sh >/dev/null

# test: the whole suite with the race detector. PostgreSQL tests run when
# RIFF_TEST_POSTGRES is set (CI sets it) and skip loudly otherwise. The S3
# tests run against the server `make s3server` builds (first, here; if it
# cannot be built they skip loudly, and CI fails). Then the
# allocation tests (TestConnGetAllocs, TestHitPathAllocs, ...Allocate) again
# without -race, which skips or leaves them out because it allocates itself.
test: tools-go tools-media tools-web
	@if s3=$$(GO=$(GO) internal/s3server/build.sh); then export RIFF_S3_SERVER="$$s3"; \
	elif [ -n "$$CI" ]; then echo "the S3 server (internal/s3server/build.sh) could not be built, and CI is set"; exit 1; \
	else echo "!!!!! the S3 server could not be built: the S3 tests will skip !!!!!"; fi; \
	echo "RIFF_S3_SERVER=$$RIFF_S3_SERVER $(GO) test -race -count=1 -timeout 30m ./..."; $(GO) test -race -count=1 -timeout 30m ./...
	$(GO) test -count=1 -run 'Allocs|Allocate' ./...
	$(GO) test -count=1 -run 'DiskTier|DiskAnswer|DiskSlices' ./edge/

# replicas: only the read-replica tests, verbose: each starts a real
# PostgreSQL primary and two hot standbys (internal/pgcluster, in a scratch
# folder, as the postgres user when root) and removes them at the end.
# make test runs them too.
replicas: tools-go
	$(GO) test -count=1 -v -run 'TestReplication|TestReplica|TestLSN' ./internal/pgcluster/ ./catalogd/store/ ./catalogd/

lint: tools-go
	$(GO) vet ./...
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.8.2 ./...

bench: tools-go tools-media
	$(GO) test -run '^$$' -bench . -benchmem ./...

# bench-compare: riff edge against nginx (configs/nginx-edge.conf: slice
# module; configs/nginx-edge-whole.conf: whole objects), same origin and
# content, riff bench's loads and wrk in alternation; prints one table with
# all of them, the ratios and CPU per request. The server under test runs
# on core 0 under a cgroup CPU cap (-cpu-cap, default 0.4 cores: needs
# root; -cpu-cap 0 turns it off), the generators on core 1. Flags:
# COMPARE_FLAGS='-duration 20s -rounds 3 -nginx-configs whole -wrk=false'
# (tracing on: COMPARE_FLAGS='-otlp-sink -edge-args "-trace-ratio 0.01"')
# (go run ./bench/compare -h lists them). See docs/performance.md.
bench-compare: build tools-media
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { echo "bench-compare needs nginx (Debian/Ubuntu: sudo apt-get install nginx)"; exit 1; }
	@command -v wrk >/dev/null 2>&1 || case "$(COMPARE_FLAGS)" in *-wrk=false*) ;; *) echo "bench-compare needs wrk (Debian/Ubuntu: sudo apt-get install wrk), or COMPARE_FLAGS=-wrk=false"; exit 1;; esac
	$(GO) build -o bin/riff-compare ./bench/compare
	./bin/riff-compare -riff $(BIN) -nginx "$$(command -v nginx || echo /usr/sbin/nginx)" -wrk-bin "$$(command -v wrk || echo wrk)" $(COMPARE_FLAGS)

clean:
	rm -rf bin data testout
