// e2e.mjs drives the web player in headless Chromium (playwright-core and
// the system's browser; nothing is downloaded) against a running Riff:
//
//   RIFF_URL=http://127.0.0.1:8080 RIFF_FLAC=a.flac RIFF_FLAC2=b.flac RIFF_OUT=testout/web node e2e/e2e.mjs
//
// A listener registers, searches a demo song, plays it (currentTime past
// 3 s, no media error), likes it, adds it to a new playlist, reloads and
// finds both; an artist uploads RIFF_FLAC, watches the progress bar and
// the processing status until ready, sets the album's cover (RIFF_COVER)
// and sees it load from the edge, and plays it; then the playlist is
// reordered, renamed and deleted, the artist followed, the profile edited,
// the audio replaced with RIFF_FLAC2 and the song taken down. Along the
// way it checks phone and desktop layouts, keyboard navigation, accessible
// names, silent token refresh, play events and readable API errors, and
// it fails on any console error. Screenshots go to RIFF_OUT. TestEndToEnd
// (e2e_test.go) runs it against `riff dev`.
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { chromium } from 'playwright-core';

const base = process.env.RIFF_URL;
const flac = process.env.RIFF_FLAC;
const flac2 = process.env.RIFF_FLAC2 || flac; // the replacement audio
const out = process.env.RIFF_OUT || 'testout/web-e2e';
const executablePath = process.env.RIFF_CHROMIUM || '/usr/bin/chromium';
const demoSong = process.env.RIFF_DEMO_SONG || 'A Major Sunrise';
const coverFile = process.env.RIFF_COVER; // an image the artist sets as the album's cover
if (!base || !flac) {
  console.error('e2e.mjs: set RIFF_URL (catalogd) and RIFF_FLAC (an audio file to upload)');
  process.exit(2);
}
await mkdir(out, { recursive: true });

const started = Date.now();
function step(name) { console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s] ${name}`); }

const browser = await chromium.launch({
  executablePath,
  headless: true,
  // Autoplay without a gesture is not what we test; the clicks are real.
  args: ['--autoplay-policy=no-user-gesture-required', '--no-sandbox', '--disable-dev-shm-usage'],
});

// Console errors fail the run, except ones a step announces it expects
// (a refused login logs the 401 of its request).
const consoleErrors = [];
const httpErrors = []; // printed when the run fails, to explain console errors
let expected = [];
function watch(page, label) {
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const text = msg.text();
    const i = expected.findIndex((re) => re.test(text));
    if (i >= 0) { expected.splice(i, 1); return; }
    consoleErrors.push(`${label}: console error: ${text}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${label}: uncaught: ${err.message}`));
  page.on('response', (res) => { if (res.status() >= 400) httpErrors.push(`${label}: ${res.request().method()} ${res.url()} → ${res.status()}`); });
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(out, `${name}.png`), fullPage: false });
}

/**
 * playedPast waits until the audio element plays past sec seconds (of the
 * song titled title, when given) with no media error; on a timeout it
 * tells the player's state and its recent playback events.
 */
async function playedPast(page, sec, title = '', timeout = 90_000) {
  try {
    await page.waitForFunction(([s, t]) => {
      const a = document.getElementById('audio');
      if (a.error) throw new Error(`media error ${a.error.code}: ${a.error.message}`);
      if (window.riff.player.error) throw new Error(`player error: ${window.riff.player.error}`);
      return a.currentTime > s && !a.paused && (!t || document.getElementById('np-title').textContent === t);
    }, [sec, title], { timeout, polling: 250 });
  } catch (err) {
    const state = await page.evaluate(() => JSON.stringify({
      title: document.getElementById('np-title').textContent, t: document.getElementById('audio').currentTime,
      paused: document.getElementById('audio').paused, queue: window.riff.player.queue.map((s) => s.id),
      index: window.riff.player.index, log: window.riff.player.log,
    }));
    throw new Error(`${err.message}\nplayer state: ${state}`);
  }
}

/** accessibleNames fails on any visible control without an accessible name. */
async function accessibleNames(page, where) {
  const nameless = await page.evaluate(() => {
    const bad = [];
    for (const el of document.querySelectorAll('button, a[href], input, select, textarea, [role=button], progress, [tabindex]:not([tabindex="-1"])')) {
      if (el.closest('[hidden]') || el.type === 'hidden') continue;
      const labelled = el.getAttribute('aria-label') || (el.getAttribute('aria-labelledby') && document.getElementById(el.getAttribute('aria-labelledby'))?.textContent) ||
        (el.labels && [...el.labels].map((l) => l.textContent).join('')) || (el.tagName !== 'INPUT' && el.textContent) || el.getAttribute('title') || '';
      if (!labelled.trim()) bad.push(el.outerHTML.slice(0, 120));
    }
    return bad;
  });
  assert.deepEqual(nameless, [], `${where}: controls without an accessible name`);
}

async function noHorizontalScroll(page, where) {
  const [sw, w] = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
  assert.ok(sw <= w, `${where}: page is ${sw}px wide in a ${w}px viewport`);
}

const stamp = Date.now().toString(36);
const listener = { name: 'E2E Listener', email: `e2e-${stamp}@riff.test`, password: 'e2e-password-123' };

try {
  // ---- desktop: listener ----
  const desktop = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await desktop.newPage();
  watch(page, 'desktop');
  page.setDefaultTimeout(45_000); // generous: CI runs other packages' tests beside this one

  step('home');
  await page.goto(base + '/');
  await page.getByRole('heading', { name: 'Trending' }).waitFor();
  await accessibleNames(page, 'home');
  await shot(page, '01-home');

  step('a refused login shows a readable message');
  await page.goto(base + '/#/login');
  await page.getByLabel('Email').fill('nobody@riff.test');
  await page.getByLabel('Password').fill('wrong-password');
  expected.push(/401/);
  await page.getByRole('button', { name: 'Log in' }).click();
  const loginError = page.locator('form .form-error');
  await loginError.waitFor();
  const msg = (await loginError.textContent()).trim();
  assert.ok(msg.length > 5 && !msg.startsWith('{') && !/urn:riff|problem/.test(msg), `login error is not readable: ${msg}`);
  await shot(page, '02-login-error');

  step('register');
  await page.goto(base + '/#/register');
  await page.getByLabel('Display name').fill(listener.name);
  await page.getByLabel('Email').fill(listener.email);
  await page.getByLabel('Password').fill(listener.password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: listener.name }).waitFor();

  step('search with the keyboard');
  await page.goto(base + '/#/');
  await page.reload(); // a fresh page: focus starts at the top
  await page.getByRole('heading', { name: 'Trending' }).waitFor();
  await page.keyboard.press('Tab'); // skip link
  assert.equal(await page.evaluate(() => document.activeElement.id), 'skip', 'first Tab reaches the skip link');
  await page.keyboard.press('Tab'); // brand
  await page.keyboard.press('Tab'); // search box
  assert.equal(await page.evaluate(() => document.activeElement.id), 'q', 'third Tab reaches the search box');
  await page.keyboard.type(demoSong);
  await page.keyboard.press('Enter');
  const results = page.getByRole('list', { name: 'Matching songs' });
  await results.getByRole('link', { name: demoSong }).waitFor();
  await accessibleNames(page, 'search');
  await shot(page, '03-search');

  step('play the demo song');
  // Keyboard: focus its Play button and press Enter.
  await results.getByRole('button', { name: `Play ${demoSong}` }).focus();
  await page.keyboard.press('Enter');
  await playedPast(page, 3);
  const quality = await page.locator('#quality').textContent();
  assert.match(quality, /kbps|HLS|Ogg/, 'the player bar shows the quality');
  assert.equal(await page.locator('#np-title').textContent(), demoSong);
  await shot(page, '04-playing');

  step('pause and resume from the player bar');
  await page.getByRole('contentinfo', { name: 'Player' }).getByRole('button', { name: 'Pause' }).click();
  await page.waitForFunction(() => document.getElementById('audio').paused);
  await page.getByRole('contentinfo', { name: 'Player' }).getByRole('button', { name: 'Play', exact: true }).click();
  await page.waitForFunction(() => !document.getElementById('audio').paused);

  step('like it');
  const like = results.getByRole('button', { name: `Like ${demoSong}` });
  await like.click();
  await page.waitForFunction(() => document.querySelector('.song .like')?.getAttribute('aria-pressed') === 'true');

  step('events reach the server');
  await page.evaluate(() => window.riff.player.audio.pause());
  await page.evaluate(() => window.riff.player.finish(false));
  await page.waitForFunction(async () => {
    await window.riff.reporter.flush();
    return JSON.parse(localStorage.getItem('riff.events') || '[]').length === 0;
  }, null, { timeout: 30_000, polling: 500 });
  const sent = await page.evaluate(() => [window.riff.reporter.accepted, window.riff.reporter.rejected]);
  assert.ok(sent[0] >= 1 && sent[1] === 0, `play events: ${sent[0]} accepted, ${sent[1]} refused`);

  step('create a playlist and add the song');
  await results.getByRole('button', { name: `Add ${demoSong} to a playlist` }).click();
  const dialog = page.getByRole('dialog');
  await dialog.getByLabel('Playlist', { exact: true }).selectOption('new');
  await dialog.getByLabel('New playlist name').fill('E2E Mix');
  await dialog.getByRole('button', { name: 'Add' }).click();
  await dialog.waitFor({ state: 'hidden' }); // it closes once the server has the song

  step('reload and find both in the library');
  await page.reload();
  await page.goto(base + '/#/library');
  await page.getByRole('heading', { name: 'Your library' }).waitFor();
  await page.getByRole('link', { name: /E2E Mix/ }).waitFor();
  await page.getByRole('list', { name: 'Liked songs' }).getByRole('link', { name: demoSong }).waitFor();
  await accessibleNames(page, 'library');
  await shot(page, '05-library');
  await page.getByRole('link', { name: /E2E Mix/ }).click();
  await page.getByRole('heading', { name: 'E2E Mix' }).waitFor();
  await page.getByRole('list', { name: 'Playlist songs' }).getByRole('link', { name: demoSong }).waitFor();
  await shot(page, '06-playlist');

  step('an expired access token is refreshed silently');
  const before = await page.evaluate(() => {
    const s = JSON.parse(localStorage.getItem('riff.session'));
    s.accessExpires = Date.now() - 1000;
    localStorage.setItem('riff.session', JSON.stringify(s));
    window.riff.api.session = s;
    return s.access;
  });
  await page.goto(base + '/#/liked');
  await page.getByRole('list', { name: 'Liked songs' }).getByRole('link', { name: demoSong }).waitFor();
  const after = await page.evaluate(() => JSON.parse(localStorage.getItem('riff.session')).access);
  assert.notEqual(after, before, 'the access token was refreshed');

  // ---- desktop: artist ----
  step('become an artist');
  await page.goto(base + '/#/studio');
  await page.getByRole('heading', { name: 'Become an artist' }).waitFor();
  await page.getByLabel('Artist name').fill(`E2E Band ${stamp}`);
  await page.getByRole('button', { name: 'Create artist' }).click();
  await page.getByRole('button', { name: 'Create album' }).waitFor();
  await page.getByLabel('Album title').fill('E2E Album');
  await page.getByRole('button', { name: 'Create album' }).click();
  await page.getByRole('button', { name: 'Upload' }).waitFor();

  step('upload a FLAC');
  const upload = page.getByRole('form', { name: 'Upload a song' });
  await upload.getByLabel('Title').fill('E2E Upload');
  await upload.getByLabel('Genre').fill('ambient');
  await upload.getByLabel('Audio file').setInputFiles(flac);
  await upload.getByRole('button', { name: 'Upload' }).click();
  const item = page.locator('.upload').filter({ hasText: 'E2E Upload' }).first();
  // The bar shows upload bytes, then processing until ready.
  await page.waitForFunction(() => Number(document.querySelector('.upload')?.dataset.uploaded) === 100, null, { timeout: 30_000 });
  await page.waitForFunction(() => document.querySelector('.upload')?.dataset.sawProcessing === 'yes', null, { timeout: 30_000 });
  await item.scrollIntoViewIfNeeded();
  await shot(page, '07-upload-processing');
  await page.waitForFunction(() => {
    const el = document.querySelector('.upload');
    if (el?.dataset.status === 'failed' || el?.classList.contains('failed')) throw new Error('upload failed: ' + el.textContent);
    return el?.dataset.status === 'ready';
  }, null, { timeout: 120_000, polling: 500 });
  assert.ok(await page.evaluate(() => document.querySelector('.upload').dataset.sawProcessing === 'yes'), 'the processing status was shown before ready');
  await accessibleNames(page, 'studio');
  await shot(page, '08-upload-ready');

  if (coverFile) {
    // An image loaded when it is complete with a natural width: a broken
    // or refused one (CSP, a 403 at the edge) has none.
    const loaded = (sel) => page.waitForFunction((q) => {
      const img = document.querySelector(q);
      return img && img.complete && img.naturalWidth > 0 ? img.naturalWidth : false;
    }, sel, { timeout: 30_000 });
    step('set the album cover');
    await page.getByLabel('Cover for E2E Album').setInputFiles(coverFile);
    await loaded('.studio-album img.card-cover');
    step('the album page shows the cover from the edge, without a token');
    await page.locator('.studio-album a').filter({ hasText: 'E2E Album' }).first().click();
    await page.getByRole('heading', { name: 'E2E Album' }).waitFor();
    const width = await (await loaded('main img.cover')).jsonValue();
    assert.ok(width >= 300, `the album cover is ${width} px wide`);
    assert.match(await page.locator('main img.cover').getAttribute('src'), /\/covers\/\d+\/\d+\/[0-9a-f]{32}\/300\.jpg$/);
    assert.equal(await page.locator('main img.cover').getAttribute('alt'), 'Cover of E2E Album');
    await loaded('.song img.thumb');
    await accessibleNames(page, 'album');
    await shot(page, '08b-album-cover');
    await page.goto(base + '/#/studio');
    await page.waitForFunction(() => document.querySelector('.upload')?.dataset.status === 'ready', null, { timeout: 30_000 });
  }

  step('play the upload');
  await item.getByRole('button', { name: 'Play E2E Upload' }).click();
  await playedPast(page, 3);
  assert.equal(await page.locator('#np-title').textContent(), 'E2E Upload');
  if (coverFile) {
    await page.waitForFunction(() => { const img = document.getElementById('np-cover'); return !img.hidden && img.complete && img.naturalWidth > 0; });
  }
  await page.getByRole('button', { name: 'Queue', exact: true }).click();
  await page.getByRole('region', { name: 'Queue' }).getByRole('button', { name: 'Play E2E Upload from the queue' }).waitFor();
  await shot(page, '09-artist-playing');
  await page.getByRole('button', { name: 'Queue', exact: true }).click();
  await page.evaluate(() => window.riff.player.audio.pause());

  // ---- desktop: managing the library ----
  step('add the upload to the playlist from its song page');
  const uploadID = await page.evaluate(() => document.querySelector('.upload').dataset.songId);
  await page.goto(`${base}/#/song/${uploadID}`);
  await page.getByRole('heading', { name: 'E2E Upload' }).waitFor();
  await page.getByRole('button', { name: 'Add E2E Upload to a playlist' }).click();
  await dialog.getByLabel('Playlist', { exact: true }).selectOption({ label: 'E2E Mix' });
  await dialog.getByRole('button', { name: 'Add' }).click();
  await dialog.waitFor({ state: 'hidden' });

  step('reorder with the keyboard, and it sticks');
  await page.goto(base + '/#/library');
  await page.getByRole('link', { name: /E2E Mix/ }).click();
  const plSongs = page.getByRole('list', { name: 'Playlist songs' });
  const order = () => plSongs.locator('.song .title').allTextContents();
  await plSongs.getByRole('link', { name: 'E2E Upload' }).waitFor();
  assert.deepEqual(await order(), [demoSong, 'E2E Upload']);
  await plSongs.getByRole('button', { name: 'Move E2E Upload up' }).focus();
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('[aria-label="Playlist songs"] .song .title')?.textContent === 'E2E Upload');
  assert.deepEqual(await order(), ['E2E Upload', demoSong]);
  await page.reload();
  await plSongs.getByRole('link', { name: demoSong }).waitFor();
  assert.deepEqual(await order(), ['E2E Upload', demoSong], 'the new order survives a reload');

  step('reorder by drag and drop');
  await plSongs.locator('.song').nth(1).dragTo(plSongs.locator('.song').nth(0));
  await page.waitForFunction((first) => document.querySelector('[aria-label="Playlist songs"] .song .title')?.textContent === first, demoSong);
  assert.deepEqual(await order(), [demoSong, 'E2E Upload']);

  step('play the playlist, next and previous');
  await page.getByRole('main').getByRole('button', { name: 'Play', exact: true }).click();
  await playedPast(page, 0.5, demoSong, 45_000);
  const bar = page.getByRole('contentinfo', { name: 'Player' });
  await bar.getByRole('button', { name: 'Next' }).click();
  await playedPast(page, 0.5, 'E2E Upload', 45_000);
  await page.evaluate(() => { window.riff.player.seek(1); });
  await bar.getByRole('button', { name: 'Previous' }).click(); // under 3 s in: the previous song
  await page.waitForFunction((t) => document.getElementById('np-title').textContent === t, demoSong);
  await page.evaluate(() => window.riff.player.audio.pause());

  step('rename, make public, remove a song');
  await page.getByText('Edit playlist').click();
  await page.getByRole('form', { name: 'Playlist settings' }).getByLabel('Name').fill('E2E Mix Renamed');
  await page.getByRole('form', { name: 'Playlist settings' }).getByLabel('Public').check();
  await page.getByRole('button', { name: 'Save' }).click();
  await page.getByRole('heading', { name: 'E2E Mix Renamed' }).waitFor();
  await page.getByText(/^Public playlist/).waitFor();
  await plSongs.getByRole('button', { name: `Remove ${demoSong} from playlist` }).click();
  await plSongs.getByRole('link', { name: demoSong }).waitFor({ state: 'detached' });
  assert.deepEqual(await order(), ['E2E Upload']);
  await shot(page, '10-playlist-edited');

  step('follow the demo artist');
  await page.goto(`${base}/#/search?q=${encodeURIComponent(demoSong)}`);
  await page.getByRole('list', { name: 'Matching songs' }).getByRole('link', { name: 'The Test Tones' }).click();
  await page.getByRole('heading', { name: 'The Test Tones' }).waitFor();
  await page.getByRole('button', { name: 'Follow' }).click();
  await page.getByRole('button', { name: 'Following' }).waitFor();
  await page.goto(base + '/#/library');
  await page.getByRole('region', { name: 'Following' }).getByRole('link', { name: /The Test Tones/ }).waitFor();

  step('profile');
  await page.goto(base + '/#/profile');
  await page.getByLabel('Display name').fill('E2E Renamed');
  await page.getByLabel('Country').fill('no');
  await page.getByRole('button', { name: 'Save profile' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'E2E Renamed' }).waitFor();
  await accessibleNames(page, 'profile');

  step('a Subsonic API key made in the profile works, and stops once revoked');
  const keyForm = page.getByRole('form', { name: 'New API key' });
  await keyForm.getByLabel('Name').fill('E2E app');
  await keyForm.getByRole('button', { name: 'Create API key' }).click();
  const apiKey = (await page.locator('[data-kind="api-keys"] code.secret').textContent()).trim();
  const restPing = async () => (await (await fetch(`${base}/rest/ping?f=json&apiKey=${encodeURIComponent(apiKey)}`)).json())['subsonic-response'];
  if ((await restPing()).status !== 'ok') throw new Error('the API key made in the profile does not work');
  await shot(page, 'profile-subsonic');
  await page.getByRole('button', { name: 'Revoke API key E2E app' }).click();
  await page.getByRole('list', { name: 'API keys' }).getByText('No API keys yet.').waitFor();
  if ((await restPing()).error?.code !== 44) throw new Error('a revoked API key still works');

  step('replace the upload\'s audio');
  await page.goto(base + '/#/studio');
  await page.getByLabel('New audio for E2E Upload').setInputFiles(flac2);
  await page.waitForFunction(async (id) => {
    const s = await window.riff.api.get(`/songs/${id}`);
    if (s.processing && s.processing.state === 'failed') throw new Error('replacement failed: ' + s.processing.error);
    return s.status === 'ready' && /\/v2\//.test(s.hls_url || '') && (!s.processing || s.processing.state === 'done');
  }, uploadID, { timeout: 120_000, polling: 1000 });
  await page.reload();
  await page.locator('.upload').filter({ hasText: 'E2E Upload' }).getByText('Ready', { exact: true }).waitFor();

  step('take the upload down, delete the playlist, log out');
  await page.goto(base + '/#/studio');
  const takedown = page.getByRole('button', { name: 'Take down E2E Upload' });
  await takedown.click();
  await takedown.click(); // the second press confirms
  await takedown.waitFor({ state: 'detached' });
  await page.goto(base + '/#/library');
  await page.getByRole('link', { name: /E2E Mix Renamed/ }).click();
  await page.getByText('Edit playlist').click();
  const del = page.getByRole('button', { name: 'Delete playlist' });
  await del.click();
  await page.getByRole('button', { name: 'Press again to delete' }).click();
  await page.getByRole('heading', { name: 'Your library' }).waitFor();
  await page.getByText('No playlists yet.').waitFor();
  await page.goto(base + '/#/profile');
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Log in' }).waitFor();
  await desktop.close();

  // ---- phone ----
  step('phone width');
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
  const mobile = await phone.newPage();
  mobile.setDefaultTimeout(45_000);
  watch(mobile, 'phone');
  await mobile.goto(base + '/#/login');
  await mobile.getByLabel('Email').fill(listener.email);
  await mobile.getByLabel('Password').fill(listener.password);
  await mobile.getByRole('button', { name: 'Log in' }).click();
  await mobile.getByRole('heading', { name: 'Trending' }).waitFor();
  await noHorizontalScroll(mobile, 'phone home');
  await shot(mobile, '11-phone-home');
  await mobile.goto(base + '/#/search?q=' + encodeURIComponent(demoSong));
  await mobile.getByRole('list', { name: 'Matching songs' }).getByRole('link', { name: demoSong }).waitFor();
  await mobile.getByRole('button', { name: `Play ${demoSong}` }).first().tap();
  await playedPast(mobile, 2);
  await noHorizontalScroll(mobile, 'phone search');
  await shot(mobile, '12-phone-playing');
  await phone.close();
} catch (err) {
  console.error(`e2e: FAILED: ${err.stack || err}`);
  if (consoleErrors.length) console.error(consoleErrors.join('\n'));
  if (httpErrors.length) console.error('HTTP errors seen:\n' + httpErrors.join('\n'));
  await browser.close();
  process.exit(1);
}
await browser.close();
if (consoleErrors.length) {
  console.error(`e2e: FAILED: console errors:\n${consoleErrors.join('\n')}\nHTTP errors seen:\n${httpErrors.join('\n')}`);
  process.exit(1);
}
console.log('e2e: all flows passed');
