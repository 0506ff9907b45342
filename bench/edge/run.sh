#!/usr/bin/env bash
# bench/edge/run.sh — riff edge against nginx, side by side (make bench-edge).
#
# Packages a song with `riff package`, publishes it under several song
# folders of a blob folder, starts `riff origin`, `riff edge` and nginx
# (configs/nginx-edge.conf: proxy_cache with the slice module) in front of
# that one origin, warms both caches, then loads them alternately — riff,
# nginx, riff, nginx — with wrk sending the same segment-sized byte-range
# requests (the EXT-X-BYTERANGE segments of every rendition of every song,
# shuffled). riff's URLs carry a playback token that the edge verifies;
# nginx's are the bare keys. Prints req/s, MB/s, p50 and p99 of each round,
# the means and the riff/nginx ratios, and writes them into the "## Edge"
# section of docs/performance.md.
#
# Knobs (environment): SONGS (8), SONG_SECONDS (90), DURATION (10s per
# round), CONNS (32), THREADS (1), ROUNDS (2 pairs), SLICE (1MiB),
# PORT_BASE (18080: origin +1, edge +2, nginx +3, edge admin +4),
# PIN (1 on machines with 2+ cores: the servers on core 0 — riff edge with
# GOMAXPROCS=1, nginx with one worker — and wrk on core 1, so that each
# server has one core to itself and wrk does not preempt it; 0: no pinning,
# NGINX_WORKERS (auto) and the edge's GOMAXPROCS (all cores)),
# KEEP=1 keeps the scratch folder, PROFILE=1 saves a CPU profile of the edge
# during its last round, DOC=0 leaves docs/performance.md alone.
set -euo pipefail

cd "$(dirname "$0")/../.."
REPO=$(pwd)
SONGS=${SONGS:-8}
SONG_SECONDS=${SONG_SECONDS:-90}
DURATION=${DURATION:-10s}
CONNS=${CONNS:-32}
THREADS=${THREADS:-1}
ROUNDS=${ROUNDS:-2}
SLICE=${SLICE:-1MiB}
PORT_BASE=${PORT_BASE:-18080}
ORIGIN_PORT=$((PORT_BASE + 1))
EDGE_PORT=$((PORT_BASE + 2))
NGINX_PORT=$((PORT_BASE + 3))
ADMIN_PORT=$((PORT_BASE + 4))
SECRET=bench-secret
NGINX=${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}
PIN=${PIN:-$([ "$(nproc)" -ge 2 ] && command -v taskset >/dev/null && echo 1 || echo 0)}
if [ "$PIN" = 1 ]; then
  SERVER_CPU="taskset -c 0"; WRK_CPU="taskset -c 1"
  NGINX_WORKERS=1; EDGE_PROCS=1
else
  SERVER_CPU=""; WRK_CPU=""
  NGINX_WORKERS=${NGINX_WORKERS:-auto}; EDGE_PROCS=${GOMAXPROCS:-$(nproc)}
fi

for tool in go ffmpeg wrk python3 curl "$NGINX"; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-edge needs $tool" >&2; exit 1; }
done

WORK=$(mktemp -d /tmp/riff-bench-edge.XXXXXX)
PIDS=()
TMPMAIN=""
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  [ -n "$TMPMAIN" ] && rm -rf "$TMPMAIN"
  if [ "${KEEP:-0}" = 1 ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
log() { printf '%s  %s\n' "$(date +%T)" "$*" >&2; }

# --- binaries -------------------------------------------------------------
log "building riff and the token minter"
go build -o "$WORK/riff" ./cmd/riff
EDGE_HELP=$("$WORK/riff" edge -h 2>&1 || true)
if grep -q "not built" <<<"$EDGE_HELP"; then
  # cmd/riff does not dispatch to edge.Run yet: a stand-in main with the
  # same subcommands, inside the module so that it may import riff/...
  TMPMAIN=$(mktemp -d "$REPO/bench/edge/tmpmain.XXXXXX")
  cat >"$TMPMAIN/main.go" <<'GO'
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"riff/edge"
	"riff/internal/playtoken"
	"riff/origin"
	"riff/packager"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cmds := map[string]func(context.Context, []string, func(string) string, io.Writer, io.Writer) error{
		"edge": edge.Run, "origin": origin.Run, "package": packager.Run, "keygen": playtoken.RunKeygen,
	}
	if len(os.Args) < 2 || cmds[os.Args[1]] == nil {
		fmt.Fprintln(os.Stderr, "usage: riff edge|origin|package|keygen ...")
		os.Exit(2)
	}
	if err := cmds[os.Args[1]](ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
GO
  go build -o "$WORK/riff" "./bench/edge/$(basename "$TMPMAIN")"
  rm -rf "$TMPMAIN"; TMPMAIN=""
fi
go build -o "$WORK/mint" ./bench/edge/mint
RIFF="$WORK/riff"

# --- content --------------------------------------------------------------
log "packaging a ${SONG_SECONDS}s song (aac 64/128/320)"
ffmpeg -v error -nostdin -f lavfi -i "anoisesrc=d=${SONG_SECONDS}:c=pink:a=0.3:r=44100" \
  -ac 2 -c:a pcm_s16le -y "$WORK/song.wav"
"$RIFF" package -formats aac -prefix artists/1/albums/1/songs/1/v1/ "$WORK/song.wav" "$WORK/blob" >/dev/null 2>"$WORK/package.log"
for i in $(seq 2 "$SONGS"); do
  mkdir -p "$WORK/blob/artists/1/albums/1/songs/$i"
  cp -r "$WORK/blob/artists/1/albums/1/songs/1/v1" "$WORK/blob/artists/1/albums/1/songs/$i/v1"
done

"$RIFF" keygen -dir "$WORK/keys" >/dev/null 2>&1
PREFIXES=()
for i in $(seq 1 "$SONGS"); do PREFIXES+=("artists/1/albums/1/songs/$i/"); done
"$WORK/mint" -key "$WORK/keys/signing.key" -ttl 2h "${PREFIXES[@]}" >"$WORK/tokens"

# The requests: every EXT-X-BYTERANGE segment of every rendition of every
# song, shuffled with a fixed seed; riff's with the song's token.
python3 - "$WORK" "$SONGS" <<'PY'
import os, random, sys
work, songs = sys.argv[1], int(sys.argv[2])
tokens = open(os.path.join(work, "tokens")).read().split()
reqs = []
for i in range(1, songs + 1):
    folder = f"artists/1/albums/1/songs/{i}/v1"
    for rung in (64, 128, 320):
        pl = open(os.path.join(work, "blob", folder, f"aac_{rung}.m3u8")).read().splitlines()
        rng = None
        for line in pl:
            if line.startswith("#EXT-X-BYTERANGE:"):
                n, off = map(int, line.split(":", 1)[1].split("@"))
                rng = (off, off + n - 1)
            elif line and not line.startswith("#") and rng:
                reqs.append((i, f"{folder}/{line}", rng))
                rng = None
random.Random(1).shuffle(reqs)
def lua(name, prefix):
    with open(os.path.join(work, name), "w") as f:
        f.write("local reqs = {\n")
        for song, key, (a, b) in reqs:
            f.write(f'  {{"{prefix(song)}{key}", "bytes={a}-{b}"}},\n')
        f.write("}\nlocal i = 0\n")
        f.write("request = function()\n  i = i % #reqs + 1\n")
        f.write('  return wrk.format("GET", reqs[i][1], {["Range"] = reqs[i][2]})\nend\n')
lua("riff.lua", lambda s: f"/t/{tokens[s-1]}/")
lua("nginx.lua", lambda s: "/")
sizes = [b - a + 1 for _, _, (a, b) in reqs]
with open(os.path.join(work, "reqinfo"), "w") as f:
    f.write(f"{len(reqs)} {sum(sizes)//len(sizes)}\n")
PY
read -r NREQ AVGSIZE <"$WORK/reqinfo"
log "$NREQ distinct segment requests, mean $((AVGSIZE / 1024)) KiB"

# --- servers ----------------------------------------------------------------
wait_http() { # url
  for _ in $(seq 1 100); do
    curl -fs -o /dev/null "$1" && return 0
    sleep 0.1
  done
  echo "timed out waiting for $1" >&2; return 1
}
log "starting riff origin :$ORIGIN_PORT, riff edge :$EDGE_PORT, nginx :$NGINX_PORT"
"$RIFF" origin -listen "127.0.0.1:$ORIGIN_PORT" -admin-listen "127.0.0.1:$((PORT_BASE + 5))" \
  -blob "$WORK/blob" -secret "$SECRET" -log-level warn 2>"$WORK/origin.log" &
PIDS+=($!)
GOMAXPROCS=$EDGE_PROCS $SERVER_CPU "$RIFF" edge -listen "127.0.0.1:$EDGE_PORT" -admin-listen "127.0.0.1:$ADMIN_PORT" \
  -origin "http://127.0.0.1:$ORIGIN_PORT" -origin-secret "$SECRET" -keys "$WORK/keys/jwks.json" \
  -cache-bytes 1GiB -slice-bytes "$SLICE" -log-level warn -pprof 2>"$WORK/edge.log" &
PIDS+=($!)
EDGE_PID=$!
mkdir -p "$WORK/nginx/logs" "$WORK/nginx/cache" "$WORK/nginx/tmp"
sed -e "s/127.0.0.1:8083/127.0.0.1:$NGINX_PORT/" -e "s/127.0.0.1:8081/127.0.0.1:$ORIGIN_PORT/" \
  -e "s/\"change-me\"/\"$SECRET\"/" -e "s/^worker_processes auto;/worker_processes $NGINX_WORKERS;/" \
  configs/nginx-edge.conf >"$WORK/nginx/nginx.conf"
NGINX_GLOBAL="daemon off;"
# As root, nginx's workers would run as nobody and could not use the
# scratch folder (mode 0700); keep them as the invoking user.
[ "$(id -u)" = 0 ] && NGINX_GLOBAL="$NGINX_GLOBAL user root;"
$SERVER_CPU "$NGINX" -p "$WORK/nginx" -c "$WORK/nginx/nginx.conf" -g "$NGINX_GLOBAL" 2>"$WORK/nginx/stderr.log" &
PIDS+=($!)
NGINX_PID=$!
wait_http "http://127.0.0.1:$((PORT_BASE + 5))/readyz"
wait_http "http://127.0.0.1:$ADMIN_PORT/readyz"
FIRST_KEY=$(awk -F'"' '/^  [{]"[/]artists/ {print substr($2, 2); exit}' "$WORK/nginx.lua")
wait_http "http://127.0.0.1:$NGINX_PORT/$FIRST_KEY"

# --- warm -------------------------------------------------------------------
log "warming both caches"
wrk -t1 -c4 -d3s -s "$WORK/riff.lua" "http://127.0.0.1:$EDGE_PORT" >/dev/null
wrk -t1 -c4 -d3s -s "$WORK/nginx.lua" "http://127.0.0.1:$NGINX_PORT" >/dev/null
TOK1=$(head -1 "$WORK/tokens")
check_hit() { # name url header
  local got
  got=$(curl -s -o /dev/null -D - -H "Range: bytes=0-999" "$2" | tr -d '\r' | awk -F': ' 'tolower($1)=="x-cache"{print $2}')
  [ "$got" = "HIT" ] || { echo "$1 is not warm (X-Cache: $got)" >&2; exit 1; }
}
check_hit riff "http://127.0.0.1:$EDGE_PORT/t/$TOK1/artists/1/albums/1/songs/1/v1/aac_320.mp4"
check_hit nginx "http://127.0.0.1:$NGINX_PORT/artists/1/albums/1/songs/1/v1/aac_320.mp4"
ORIGIN_BEFORE=$(curl -s "http://127.0.0.1:$((PORT_BASE + 5))/metrics" | awk '/^riff_http_requests_total/ {s += $2} END {print s+0}')

# --- load ---------------------------------------------------------------------
# cpu_ticks PID... -> user+system clock ticks of those processes
cpu_ticks() {
  local t=0 p
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] && t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat")))
  done
  echo "$t"
}
server_pids() { # riff|nginx
  if [ "$1" = riff ]; then echo "$EDGE_PID"; else echo "$NGINX_PID" $(pgrep -P "$NGINX_PID"); fi
}
HZ=$(getconf CLK_TCK)
# parse_wrk FILE -> "req/s MB/s p50_ms p99_ms errors"
parse_wrk() {
  awk '
    function ms(v) { if (v ~ /us$/) return v/1000; if (v ~ /ms$/) return v+0; if (v ~ /s$/) return v*1000; return v }
    function mb(v) { if (v ~ /GB$/) return v*1024; if (v ~ /MB$/) return v+0; if (v ~ /KB$/) return v/1024; return v/1048576 }
    /^ +50%/ { p50 = ms($2) } /^ +99%/ { p99 = ms($2) }
    /^Requests\/sec:/ { rps = $2 } /^Transfer\/sec:/ { mbs = mb($2) }
    /Non-2xx or 3xx responses:/ { err += $NF } /Socket errors:/ { err += 1 }
    END { printf "%.0f %.1f %.3f %.3f %d\n", rps, mbs, p50, p99, err }' "$1"
}
RESULTS="$WORK/results"
: >"$RESULTS"
for round in $(seq 1 "$ROUNDS"); do
  for who in riff nginx; do
    port=$EDGE_PORT; [ "$who" = nginx ] && port=$NGINX_PORT
    if [ "$who" = riff ] && [ "${PROFILE:-0}" = 1 ] && [ "$round" = "$ROUNDS" ]; then
      curl -s -o "$WORK/edge.cpu.pprof" "http://127.0.0.1:$ADMIN_PORT/debug/pprof/profile?seconds=5" &
      PROF_PID=$!
    fi
    log "round $round: $who (wrk -t$THREADS -c$CONNS -d$DURATION)"
    pids=$(server_pids "$who")
    t0=$(cpu_ticks $pids)
    $WRK_CPU wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency -s "$WORK/$who.lua" "http://127.0.0.1:$port" >"$WORK/wrk-$who-$round.txt"
    t1=$(cpu_ticks $pids)
    [ -n "${PROF_PID:-}" ] && { wait "$PROF_PID"; PROF_PID=""; }
    read -r rps mbs p50 p99 errs < <(parse_wrk "$WORK/wrk-$who-$round.txt")
    if [ "$errs" != 0 ]; then cat "$WORK/wrk-$who-$round.txt" >&2; echo "$who answered errors" >&2; exit 1; fi
    nreq=$(awk '/requests in/ {print $1}' "$WORK/wrk-$who-$round.txt")
    cpu_us=$(awk -v d=$((t1 - t0)) -v hz="$HZ" -v n="$nreq" 'BEGIN {printf "%.1f", d / hz * 1e6 / n}')
    echo "$who $round $rps $mbs $p50 $p99 $cpu_us" >>"$RESULTS"
  done
done
ORIGIN_AFTER=$(curl -s "http://127.0.0.1:$((PORT_BASE + 5))/metrics" | awk '/^riff_http_requests_total/ {s += $2} END {print s+0}')
[ "${PROFILE:-0}" = 1 ] && cp "$WORK/edge.cpu.pprof" /tmp/riff-edge.cpu.pprof && cp "$WORK/riff" /tmp/riff-edge.bin && log "edge CPU profile: go tool pprof /tmp/riff-edge.bin /tmp/riff-edge.cpu.pprof"

# --- report -------------------------------------------------------------------
CPU=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
REPORT=$(python3 - "$RESULTS" "$NREQ" "$AVGSIZE" "$SONGS" "$SONG_SECONDS" "$DURATION" "$CONNS" "$THREADS" "$SLICE" "$(nproc)" "$CPU" "$((ORIGIN_AFTER - ORIGIN_BEFORE))" "$("$NGINX" -v 2>&1 | sed 's/.*: //')" "$(go env GOVERSION)" "$NGINX_WORKERS" "$PIN" "$EDGE_PROCS" <<'PY'
import sys
(results, nreq, avg, songs, secs, dur, conns, threads, slice_, ncpu, cpu, origin_reqs, nginx_v, go_v, workers, pin, procs) = sys.argv[1:]
rows = [l.split() for l in open(results) if l.strip()]
def mean(who, i):
    v = [float(r[i]) for r in rows if r[0] == who]
    return sum(v) / len(v)
out = []
placement = ("the servers pinned to core 0 (riff edge GOMAXPROCS=1, nginx 1 worker), wrk to core 1" if pin == "1"
             else f"no pinning (riff edge GOMAXPROCS={procs}, nginx worker_processes {workers})")
out.append(f"Measured by `make bench-edge` (bench/edge/run.sh) on {ncpu} cores ({cpu}), everything on loopback, {placement}: "
           f"wrk -t{threads} -c{conns} -d{dur} per round, rounds alternating riff, nginx; {songs} songs of {secs} s "
           f"(AAC 64/128/320), {nreq} distinct segment byte ranges (mean {int(avg)//1024} KiB), shuffled; "
           f"warm caches; slice {slice_}; riff URLs carry an Ed25519 playback token, verified per request "
           f"(cached verification); nginx {nginx_v} with proxy_cache + slice 1m (configs/nginx-edge.conf), "
           f"no token; {go_v}.")
out.append("")
out.append("| round | server | req/s | MB/s | p50 ms | p99 ms | server CPU µs/req |")
out.append("|---|---|---:|---:|---:|---:|---:|")
for r in rows:
    out.append(f"| {r[1]} | {r[0]} | {float(r[2]):.0f} | {float(r[3]):.1f} | {float(r[4]):.3f} | {float(r[5]):.3f} | {float(r[6]):.1f} |")
out.append("")
out.append("| mean | req/s | MB/s | p50 ms | p99 ms | server CPU µs/req |")
out.append("|---|---:|---:|---:|---:|---:|")
for who in ("riff", "nginx"):
    out.append(f"| {who} | {mean(who,2):.0f} | {mean(who,3):.1f} | {mean(who,4):.3f} | {mean(who,5):.3f} | {mean(who,6):.1f} |")
out.append(f"| riff / nginx | {mean('riff',2)/mean('nginx',2):.2f} | {mean('riff',3)/mean('nginx',3):.2f} | "
           f"{mean('riff',4)/mean('nginx',4):.2f} | {mean('riff',5)/mean('nginx',5):.2f} | {mean('riff',6)/mean('nginx',6):.2f} |")
out.append("")
out.append(f"Origin requests during the measured rounds: {origin_reqs} (both caches warm).")
print("\n".join(out))
PY
)
echo
echo "$REPORT"

if [ "${DOC:-1}" = 1 ]; then
  printf '%s\n' "$REPORT" >"$WORK/report.md"
  python3 - "$REPO/docs/performance.md" "$WORK/report.md" <<'PY'
import os, re, sys
path = sys.argv[1]
report = open(sys.argv[2]).read().strip()
section = "## Edge\n\n" + report + "\n"
text = open(path).read() if os.path.exists(path) else "# Performance\n"
m = re.search(r"^## Edge\n.*?(?=^## |\Z)", text, flags=re.M | re.S)
marker = "<!-- bench-edge results -->"
if m:
    old = m.group(0)
    if marker in old:  # keep the hand-written part above the marker
        new = old[:old.index(marker)] + marker + "\n\n" + report + "\n\n"
    else:
        new = section + "\n"
    text = text[:m.start()] + new + text[m.end():]
else:
    text = text.rstrip("\n") + "\n\n" + section
open(path, "w").write(text)
PY
  log "wrote the results into docs/performance.md (## Edge)"
fi
