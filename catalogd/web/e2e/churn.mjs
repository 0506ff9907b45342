// churn.mjs plays songs in the web player many times in one headless
// Chromium page and fails on any stall or recovery, so the player cannot
// quietly hide bad bytes (it recovers from them for real listeners).
// TestPlaysUnderCacheChurn (churn_test.go) runs it against `riff dev` with
// a small edge cache while other songs' segments are fetched beside it:
//
//   RIFF_URL=http://127.0.0.1:8080 RIFF_SONGS=1,2,3,4 RIFF_EMAIL=demo@riff.dev \
//   RIFF_PASSWORD=riff-demo-password node e2e/churn.mjs
//
// A play: load a song through the player (as pressing Play does) and
// check it starts; pause, pin an HLS rendition and seek to a random point
// shortly before a segment boundary; wait until RIFF_SPAN seconds (default
// 1.5) from there are buffered in that rendition; play them at RIFF_RATE
// times speed (default 4: above it Chromium's audio renderer falls behind
// on every play); check that currentTime got there,
// that the audio element's played ranges cover the span, that the
// rendition played is the one asked for, and that the player counted no
// stall and no recovery (window.riff.player.stalls, .recoveries).
//
// Other settings: RIFF_PLAYS (default 200), RIFF_SEED (the random choices;
// printed, so a run can be repeated), RIFF_MAX_FAILURES (stop after this
// many failed plays, default 10), RIFF_PLAY_TIMEOUT (seconds one step of a
// play may take, default 30), RIFF_CHROMIUM. It prints one line per play
// and, for a failed play, the player's state and recent events; the last
// line is a summary. Exit status 1 when any play failed.
import { chromium } from 'playwright-core';

const env = process.env;
const base = env.RIFF_URL;
const songIDs = (env.RIFF_SONGS || '').split(',').filter(Boolean).map(Number);
const plays = Number(env.RIFF_PLAYS || 200);
const span = Math.max(1, Number(env.RIFF_SPAN || 1.5));
const rate = Number(env.RIFF_RATE || 4); // above 4x, Chromium waits on its audio renderer on every play
const segment = 6; // packager.DefaultSegmentDuration
const seed = Number(env.RIFF_SEED || Date.now() % 1e9);
const maxFailures = Number(env.RIFF_MAX_FAILURES || 10);
const stepTimeout = Number(env.RIFF_PLAY_TIMEOUT || 30) * 1000;
if (!base || !songIDs.length || !env.RIFF_EMAIL || !env.RIFF_PASSWORD) {
  console.error('churn.mjs: set RIFF_URL (catalogd), RIFF_SONGS (song ids), RIFF_EMAIL and RIFF_PASSWORD (a premium listener)');
  process.exit(2);
}

// mulberry32: a small seeded generator, so a run's choices can be repeated.
let state = seed >>> 0;
function random() {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}

const started = Date.now();
const elapsed = () => ((Date.now() - started) / 1000).toFixed(1);
console.log(`churn: ${plays} plays of songs ${songIDs.join(',')}, ${span}s each at ${rate}x, seed ${seed}`);

const browser = await chromium.launch({
  executablePath: env.RIFF_CHROMIUM || '/usr/bin/chromium',
  headless: true,
  args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--disable-dev-shm-usage'],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 800 } })).newPage();
page.setDefaultTimeout(45_000);
const pageErrors = [];
page.on('pageerror', (err) => pageErrors.push(`uncaught: ${err.message}`));
page.on('console', (msg) => { if (msg.type() === 'error') pageErrors.push(`console error: ${msg.text()}`); });

/**
 * onePlay runs in the page: one play as the header describes. It throws
 * with what it was waiting for, or returns what the play did.
 */
async function onePlay({ song, level, from, span, rate, timeout }) {
  const pl = window.riff.player;
  const a = pl.audio;
  const stalls0 = pl.stalls;
  const recoveries0 = pl.recoveries;
  const marks = [];
  const t0 = performance.now();
  const mark = (what) => marks.push(`${what} ${Math.round(performance.now() - t0)}ms`);
  const check = () => {
    if (a.error) throw new Error(`media error ${a.error.code}: ${a.error.message}`);
    if (pl.error) throw new Error(`player error: ${pl.error}`);
    if (pl.stalls !== stalls0) throw new Error('the player stalled');
    if (pl.recoveries !== recoveries0) throw new Error('the player recovered from an error');
  };
  const until = (cond, what) => new Promise((resolve, reject) => {
    const begin = performance.now();
    const poll = () => {
      try {
        if (cond()) { mark(what); resolve(); return; }
      } catch (err) { reject(new Error(`${err.message} (waiting for ${what})`)); return; }
      if (performance.now() - begin > timeout) reject(new Error(`waited ${timeout / 1000}s for ${what}`));
      else setTimeout(poll, 20);
    };
    poll();
  });
  const ranges = (tr) => Array.from({ length: tr.length }, (_, i) => [tr.start(i), tr.end(i)]);
  const covers = (tr, lo, hi) => ranges(tr).some(([s, e]) => s <= lo && e >= hi);

  await pl.playSongs([song], 0, 'other');
  await until(() => { check(); return pl.hls && pl.hls.levels.length && !a.paused && a.currentTime > 0; }, 'the start of play');
  const hls = pl.hls;
  if (level >= hls.levels.length) level = hls.levels.length - 1;
  // Pin the rendition and seek, paused: what is buffered from here on is
  // that rendition's, and the span is played from the buffer.
  a.pause();
  const frags = [];
  hls.on('hlsFragBuffered', (_, d) => { if (d.frag.level === level) frags.push([d.frag.start, d.frag.end]); });
  hls.currentLevel = level;
  pl.seek(from);
  const to = from + span;
  const fragsCover = () => {
    let t = from;
    for (const [s, e] of frags.slice().sort((x, y) => x[0] - y[0])) if (s <= t + 0.1 && e > t) t = e;
    return t >= to;
  };
  await until(() => { check(); return !a.seeking && fragsCover() && covers(a.buffered, from + 0.05, to); }, `${from.toFixed(2)}s to ${to.toFixed(2)}s buffered in level ${level}`);
  a.playbackRate = rate;
  await a.play();
  await until(() => { check(); return a.currentTime >= to; }, `currentTime to pass ${to.toFixed(2)}s (it is ${a.currentTime.toFixed(2)}s)`);
  a.pause();
  check();
  if (!covers(a.played, from + 0.25, to)) throw new Error(`played ranges ${JSON.stringify(ranges(a.played))} do not cover ${from.toFixed(2)}s to ${to.toFixed(2)}s`);
  if (hls.currentLevel !== level) throw new Error(`playing level ${hls.currentLevel}, asked for ${level}`);
  const url = String(hls.levels[level].url || '');
  return { rendition: url.slice(url.lastIndexOf('/') + 1), t: a.currentTime, marks };
}

/** state is the player's state and recent events, for a failed play. */
async function playerState() {
  return page.evaluate(() => {
    const pl = window.riff.player;
    const a = pl.audio;
    const r = (tr) => Array.from({ length: tr.length }, (_, i) => [+tr.start(i).toFixed(2), +tr.end(i).toFixed(2)]);
    return JSON.stringify({
      song: pl.current && pl.current.id, t: a.currentTime, paused: a.paused, readyState: a.readyState,
      buffered: r(a.buffered), played: r(a.played), level: pl.hls && pl.hls.currentLevel,
      stalls: pl.stalls, recoveries: pl.recoveries, error: pl.error,
    }) + '\nlog:\n  ' + pl.log.join('\n  ');
  }).catch((err) => `(no state: ${err.message})`);
}

const failed = [];
let stalls = 0;
let recoveries = 0;
let done = 0;
try {
  await page.goto(base + '/#/login');
  await page.getByLabel('Email').fill(env.RIFF_EMAIL);
  await page.getByLabel('Password').fill(env.RIFF_PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('heading', { name: 'Trending' }).waitFor();
  const songs = await page.evaluate(async (ids) => Promise.all(ids.map((id) => window.riff.api.get(`/songs/${id}`))), songIDs);
  for (const s of songs) {
    if (!s.hls_url || !(s.duration_ms > (segment + span + 1) * 1000)) throw new Error(`song ${s.id} cannot be played for ${span}s past a seek: ${JSON.stringify(s)}`);
  }
  console.log(`[${elapsed()}s] logged in; songs: ${songs.map((s) => `${s.id} "${s.title}" ${s.duration_ms / 1000}s`).join(', ')}`);

  for (let n = 1; n <= plays && failed.length < maxFailures; n++) {
    const song = songs[Math.floor(random() * songs.length)];
    const level = Math.floor(random() * 3);
    // A random point shortly before a random segment boundary (the
    // packager's segments are 6 s), so the span crosses it.
    const boundaries = Math.floor((song.duration_ms / 1000 - span - 1) / segment);
    const from = Math.round((segment * (1 + Math.floor(random() * boundaries)) - 0.3 - random() * (span - 0.8)) * 100) / 100;
    const t = Date.now();
    let res;
    let err;
    try {
      res = await page.evaluate(onePlay, { song, level, from, span, rate, timeout: stepTimeout });
    } catch (e) {
      err = e;
    }
    const counts = await page.evaluate(() => [window.riff.player.stalls, window.riff.player.recoveries]).catch(() => [stalls, recoveries]);
    const st = counts[0] - stalls;
    const rc = counts[1] - recoveries;
    [stalls, recoveries] = counts;
    done = n;
    const what = `play ${n}/${plays}: song ${song.id} level ${level} from ${from.toFixed(2)}s`;
    if (err || st || rc) {
      const msg = (err ? err.message : 'finished, but').split('\n')[0].replace(/^page\.evaluate: (Error: )?/, '');
      failed.push({ n, st, rc });
      console.log(`[${elapsed()}s] ${what}: FAILED: ${msg}; stalls ${st}, recoveries ${rc}\nplayer state: ${await playerState()}`);
    } else {
      console.log(`[${elapsed()}s] ${what} (${res.rendition}): ok in ${Date.now() - t}ms (${res.marks.join(', ')})`);
    }
  }
} catch (err) {
  console.log(`churn: FAILED after ${done} plays: ${err.stack || err}\nplayer state: ${await playerState()}`);
  failed.push({ n: done + 1, st: 0, rc: 0 });
}
await browser.close();
const summary = `${done} plays in ${elapsed()}s, ${failed.length} failed` +
  (failed.length ? ` (plays ${failed.map((f) => f.n).join(', ')})` : '') +
  `; stalls ${stalls} in ${failed.filter((f) => f.st).length} plays, recoveries ${recoveries} in ${failed.filter((f) => f.rc).length} plays`;
if (pageErrors.length) console.log(`page errors:\n${pageErrors.join('\n')}`);
if (failed.length) {
  console.log(`churn: FAILED: ${summary}${done < plays ? ` (stopped early: RIFF_MAX_FAILURES=${maxFailures})` : ''}`);
  process.exit(1);
}
console.log(`churn: ok: ${summary}`);
