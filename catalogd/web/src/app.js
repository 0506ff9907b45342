// app.js: Riff's web player. Routes live in the URL fragment
// (#/song/12) so no page path collides with an API path; each route
// renders into <main>. See web.go for the build and README.md for use.
import { Api, ApiError } from './api.js';
import { field, formatTime, h } from './dom.js';
import { Reporter } from './events.js';
import { Player } from './player.js';
import { subsonicAccess } from './subsonic.js';

const api = new Api();
const reporter = new Reporter(api);
const player = new Player(document.getElementById('audio'), api, reporter);
const main = document.getElementById('main');
const alertBox = document.getElementById('alert');
const statusBox = document.getElementById('status');

// ---- messages ----

/** showError shows an error as a readable message (never raw JSON). */
function showError(err) {
  const msg = err instanceof ApiError || err instanceof Error ? err.message : String(err);
  alertBox.replaceChildren(h('p', {}, msg), h('button', { type: 'button', class: 'ghost', 'aria-label': 'Dismiss message', on: { click: () => alertBox.replaceChildren() } }, '×'));
  alertBox.hidden = false;
}

let statusTimer;
function say(msg) {
  statusBox.textContent = msg;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { statusBox.textContent = ''; }, 4000);
}

/** guard runs an action, showing its error if it fails. */
async function guard(fn) {
  try { return await fn(); } catch (err) { if (err instanceof ApiError && err.status === 401 && !api.loggedIn) go('#/login'); showError(err); return undefined; }
}

/** formError shows an API error next to a form, and marks the field. */
function formError(form, err) {
  let box = form.querySelector('.form-error');
  if (!box) { box = h('p', { class: 'form-error', role: 'alert' }); form.prepend(box); }
  box.textContent = err.message;
  for (const el of form.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
  if (err.field && form.elements[err.field]) {
    form.elements[err.field].setAttribute('aria-invalid', 'true');
    form.elements[err.field].focus();
  }
}

function onSubmit(form, fn) {
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const btn = form.querySelector('[type=submit]');
    if (btn) btn.disabled = true;
    try { await fn(new FormData(form)); } catch (err) { formError(form, err); } finally { if (btn) btn.disabled = false; }
  });
  return form;
}

// ---- routing ----

function go(hash) { if (location.hash !== hash) location.hash = hash; else render(); }

function parseRoute() {
  const raw = location.hash.replace(/^#/, '') || '/';
  const [p, qs] = raw.split('?');
  return { parts: p.split('/').filter(Boolean), query: new URLSearchParams(qs || '') };
}

const routes = {
  '': viewHome,
  login: viewLogin,
  register: viewRegister,
  search: viewSearch,
  song: viewSong,
  album: viewAlbum,
  artist: viewArtist,
  playlist: viewPlaylist,
  library: viewLibrary,
  liked: viewLiked,
  recent: viewRecent,
  profile: viewProfile,
  studio: viewStudio,
};
const needsLogin = new Set(['library', 'liked', 'recent', 'profile', 'studio']);

let renderSeq = 0;
async function render() {
  const { parts, query } = parseRoute();
  const name = parts[0] || '';
  const view = routes[name];
  const seq = ++renderSeq;
  alertBox.hidden = true;
  updateNav(name);
  if (needsLogin.has(name) && !api.loggedIn) { go('#/login?next=' + encodeURIComponent(location.hash)); return; }
  main.replaceChildren(h('p', { class: 'muted', role: 'status' }, 'Loading…'));
  try {
    const content = view ? await view(parts.slice(1), query) : notFound();
    if (seq !== renderSeq) return;
    main.replaceChildren(...[content].flat(Infinity).filter((c) => c !== null && c !== undefined && c !== false));
  } catch (err) {
    if (seq !== renderSeq) return;
    main.replaceChildren(h('h1', {}, 'Something went wrong'), h('p', { class: 'error', role: 'alert' }, err.message || String(err)),
      h('p', {}, h('a', { href: '#/' }, 'Back to the home page')));
  }
  const heading = main.querySelector('h1');
  if (heading && document.activeElement !== document.body && !main.contains(document.activeElement)) {
    heading.tabIndex = -1;
    heading.focus({ preventScroll: false });
  }
  document.title = (heading ? heading.textContent + ' · ' : '') + 'Riff';
}

function notFound() { return [h('h1', {}, 'Page not found'), h('p', {}, h('a', { href: '#/' }, 'Go home'))]; }

// ---- shared pieces ----

/**
 * coverImg is an album's own cover (cover_sizes: square JPEGs at the edge,
 * 64, 300 and 640 px) shown at size CSS pixels, the browser picking the
 * size for the screen's density; a blank square when the album has none.
 * Links an artist gave (a cover_url without sizes) are not shown: the
 * page's CSP allows images from catalogd and the edge only. alt is empty
 * where the album's title is next to it.
 */
function coverImg(album, size, cls, alt = '') {
  const sizes = (album && album.cover_sizes) || null;
  if (!sizes || !sizes[String(size)]) return h('span', { class: `${cls} blank`, 'aria-hidden': 'true' });
  const srcset = Object.entries(sizes).map(([n, u]) => `${u} ${n}w`).join(', ');
  return h('img', { class: cls, src: sizes[String(size)], srcset, sizes: `${size}px`, alt, width: size, height: size, decoding: 'async' });
}

function artistLinks(song) {
  const out = [];
  (song.artists || []).forEach((a, i) => { if (i) out.push(', '); out.push(h('a', { href: `#/artist/${a.id}` }, a.name)); });
  return out;
}

/**
 * songList renders songs as a list whose rows play, like, queue and add
 * to playlists. opts.extra(song, i) adds controls to a row; opts.source
 * names where plays came from.
 */
function songList(songs, opts = {}) {
  if (!songs.length) return h('p', { class: 'muted' }, opts.empty || 'No songs here yet.');
  const label = opts.label || 'Songs';
  return h('ol', { class: 'songs', 'aria-label': label }, songs.map((s, i) => songRow(songs, s, i, opts)));
}

function songRow(songs, s, i, opts) {
  if (s.status === 'unavailable') {
    // A song the listener may no longer see (taken down, or not ready and
    // not theirs): it keeps its place in the list, and nothing plays it.
    return h('li', { class: 'song unavailable', 'data-song-id': s.id },
      h('span', { class: 'icon' }, '–'),
      h('div', { class: 'meta' }, h('span', { class: 'title muted' }, 'Unavailable song'),
        h('span', { class: 'sub' }, 'It was removed or is not released yet.')),
      h('span', { class: 'dur' }, ''),
      h('div', { class: 'actions' }, opts.extra ? opts.extra(s, i) : null));
  }
  const play = () => {
    const playable = songs.filter((x) => x.status !== 'unavailable');
    return player.playSongs(playable, playable.indexOf(s), opts.source || 'list');
  };
  const row = h('li', { class: 'song', 'data-song-id': s.id },
    h('button', { type: 'button', class: 'icon play', 'aria-label': `Play ${s.title}`, on: { click: play } }, '▶'),
    coverImg(s.album, 64, 'thumb'),
    h('div', { class: 'meta' },
      h('a', { class: 'title', href: `#/song/${s.id}` }, s.title),
      s.explicit ? h('span', { class: 'badge', title: 'Explicit' }, 'E') : null,
      s.status && s.status !== 'ready' ? h('span', { class: 'badge' }, s.status) : null,
      h('span', { class: 'sub' }, artistLinks(s), s.album && s.album.id ? [' · ', h('a', { href: `#/album/${s.album.id}` }, s.album.title)] : null)),
    h('span', { class: 'dur' }, s.duration_ms ? formatTime(s.duration_ms / 1000) : ''),
    h('div', { class: 'actions' },
      likeButton(s),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Add ${s.title} to queue`, title: 'Add to queue', on: { click: () => { player.enqueue(s); say(`Added “${s.title}” to the queue.`); } } }, '+'),
      h('button', { type: 'button', class: 'icon', 'aria-label': `Add ${s.title} to a playlist`, title: 'Add to playlist', on: { click: () => addToPlaylist(s) } }, '☰'),
      opts.extra ? opts.extra(s, i) : null));
  return row;
}

function likeButton(song) {
  const btn = h('button', { type: 'button', class: 'icon like', 'aria-label': `Like ${song.title}`, 'aria-pressed': song.liked ? 'true' : 'false', title: 'Like' }, song.liked ? '♥' : '♡');
  btn.addEventListener('click', () => guard(async () => {
    if (!api.loggedIn) { go('#/login'); return; }
    const liked = btn.getAttribute('aria-pressed') !== 'true';
    btn.disabled = true;
    try {
      if (liked) await api.post(`/songs/${song.id}/like`); else await api.del(`/songs/${song.id}/like`);
    } finally { btn.disabled = false; }
    song.liked = liked;
    btn.setAttribute('aria-pressed', String(liked));
    btn.textContent = liked ? '♥' : '♡';
    say(liked ? `Liked “${song.title}”.` : `Removed “${song.title}” from liked songs.`);
  }));
  return btn;
}

function items(page) {
  if (!page) return [];
  if (Array.isArray(page)) return page;
  return page.items || [];
}

/** songOf unwraps list entries that carry a song plus extra fields. */
function songOf(entry) { return entry && entry.song ? { ...entry.song, ...entry, song: undefined } : entry; }

async function myPlaylists() {
  const page = await api.get('/users/me/playlists', { limit: 50 });
  return items(page);
}

const dialog = document.getElementById('dialog');

/** addToPlaylist asks which playlist (or a new one) and adds the song. */
async function addToPlaylist(song) {
  if (!api.loggedIn) { go('#/login'); return; }
  const lists = await guard(myPlaylists);
  if (!lists) return;
  const select = h('select', { name: 'playlist' }, lists.map((p) => h('option', { value: p.id }, p.name)), h('option', { value: 'new' }, 'New playlist…'));
  const name = h('input', { name: 'name', autocomplete: 'off', maxlength: 100, placeholder: 'My playlist' });
  const newField = field('New playlist name', name);
  const syncNew = () => { newField.hidden = select.value !== 'new'; };
  select.addEventListener('change', syncNew);
  const form = h('form', { method: 'dialog', class: 'stack' },
    h('h2', {}, `Add “${song.title}” to a playlist`),
    field('Playlist', select), newField,
    h('div', { class: 'row' }, h('button', { type: 'submit' }, 'Add'), h('button', { type: 'button', class: 'ghost', on: { click: () => dialog.close() } }, 'Cancel')));
  syncNew();
  onSubmit(form, async () => {
    let id = select.value;
    if (id === 'new') {
      const pl = await api.post('/playlist', { name: name.value.trim(), is_public: false, description: '' });
      id = pl.id;
    }
    await api.put(`/playlist/${id}/songs`, { songs_id: [song.id] });
    dialog.close();
    say(`Added “${song.title}” to the playlist.`);
  });
  dialog.replaceChildren(form);
  dialog.setAttribute('aria-label', 'Add to playlist');
  dialog.showModal();
  select.focus();
}

function pager(page, makeHash) {
  if (!page || page.total === undefined) return null;
  const { offset = 0, limit = 20, total } = page;
  if (total <= limit && offset === 0) return null;
  return h('nav', { class: 'pager', 'aria-label': 'Pages' },
    offset > 0 ? h('a', { href: makeHash(Math.max(0, offset - limit)) }, '← Previous') : null,
    h('span', {}, `${offset + 1}–${Math.min(offset + limit, total)} of ${total}${page.total_capped ? '+' : ''}`),
    page.next || offset + limit < total ? h('a', { href: makeHash(offset + limit) }, 'Next →') : null);
}

// ---- views ----

const GENRES = ['', 'ambient', 'classical', 'rock', 'pop', 'jazz', 'electronic', 'hip-hop', 'folk'];

async function viewHome(_, query) {
  const genre = query.get('genre') || '';
  const select = h('select', { name: 'genre' }, GENRES.map((g) => h('option', { value: g, selected: g === genre }, g || 'All genres')));
  select.addEventListener('change', () => go('#/?genre=' + encodeURIComponent(select.value)));
  const [page, recent, lists] = await Promise.all([
    api.get('/songs/trending', { genre, limit: 50 }),
    api.loggedIn ? api.get('/users/me/recently-played', { limit: 5 }).catch(() => null) : null,
    api.loggedIn ? api.get('/users/me/playlists', { limit: 6 }).catch(() => null) : null,
  ]);
  const songs = items(page);
  const recentSongs = items(recent).map(songOf);
  return [
    h('h1', {}, 'Trending'),
    api.loggedIn ? null : h('p', { class: 'lead' }, 'Log in or create an account to play songs. ', h('a', { href: '#/login' }, 'Log in'), ' · ', h('a', { href: '#/register' }, 'Create an account')),
    field('Genre', select),
    songList(songs, { label: 'Trending songs', source: 'trending', empty: 'Nothing is trending in this genre yet: search for songs with the box above.' }),
    recentSongs.length ? h('section', { 'aria-label': 'Jump back in' }, h('h2', {}, 'Jump back in'), songList(recentSongs, { label: 'Recently played songs', source: 'recent' })) : null,
    items(lists).length ? h('section', { 'aria-label': 'Your playlists' }, h('h2', {}, 'Your playlists'),
      h('ul', { class: 'cards' }, items(lists).map((p) => h('li', {}, h('a', { href: `#/playlist/${p.id}` }, h('strong', {}, p.name), h('span', { class: 'sub' }, `${p.item_count ?? 0} songs`)))))) : null,
  ];
}

function afterLogin(query) {
  const next = query.get('next');
  go(next && next.startsWith('#/') && !next.startsWith('#/login') && !next.startsWith('#/register') ? next : '#/');
}

function viewLogin(_, query) {
  const form = onSubmit(h('form', { class: 'stack narrow', 'aria-label': 'Log in' },
    field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'username', required: true })),
    field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true })),
    h('button', { type: 'submit' }, 'Log in')), async (fd) => {
    await api.login(fd.get('email'), fd.get('password'));
    say('Logged in.');
    afterLogin(query);
  });
  return [h('h1', {}, 'Log in'), form, h('p', {}, 'New to Riff? ', h('a', { href: '#/register' + (query.get('next') ? '?next=' + encodeURIComponent(query.get('next')) : '') }, 'Create an account'))];
}

function viewRegister(_, query) {
  const form = onSubmit(h('form', { class: 'stack narrow', 'aria-label': 'Create an account' },
    field('Display name', h('input', { name: 'display_name', autocomplete: 'nickname', required: true, maxlength: 100 })),
    field('Email', h('input', { name: 'email', type: 'email', autocomplete: 'email', required: true })),
    field('Password', h('input', { name: 'password', type: 'password', autocomplete: 'new-password', required: true, minlength: 8 }), 'At least 8 characters.'),
    field('Country', h('input', { name: 'country', autocomplete: 'country', maxlength: 2, placeholder: 'SE' }), 'Two-letter code, optional.'),
    h('button', { type: 'submit' }, 'Create account')), async (fd) => {
    const body = { email: fd.get('email'), password: fd.get('password'), display_name: fd.get('display_name') };
    const country = String(fd.get('country') || '').trim().toUpperCase();
    if (country) body.country = country;
    await api.register(body);
    say('Welcome to Riff!');
    afterLogin(query);
  });
  return [h('h1', {}, 'Create an account'), form, h('p', {}, 'Have an account? ', h('a', { href: '#/login' }, 'Log in'))];
}

const SEARCH_TYPES = [['song', 'Songs'], ['artist', 'Artists'], ['album', 'Albums'], ['playlist', 'Playlists']];

async function viewSearch(_, query) {
  const q = (query.get('q') || '').trim();
  const type = query.get('type') || '';
  const offset = Number(query.get('offset') || 0);
  searchInput.value = q;
  const title = h('h1', {}, q ? `Results for “${q}”` : 'Search');
  if (!q) return [title, h('p', { class: 'muted' }, 'Type in the search box above: songs, artists, albums and public playlists.')];
  const limit = type ? 20 : 5;
  const res = await api.get('/search', { q, type: type || undefined, limit, offset: offset || undefined });
  const tabs = h('nav', { class: 'tabs', 'aria-label': 'Result types' },
    h('a', { href: '#/search?q=' + encodeURIComponent(q), 'aria-current': type ? null : 'page' }, 'All'),
    SEARCH_TYPES.map(([t, label]) => h('a', { href: `#/search?q=${encodeURIComponent(q)}&type=${t}`, 'aria-current': type === t ? 'page' : null }, label)));
  const hash = (t) => (o) => `#/search?q=${encodeURIComponent(q)}&type=${t}&offset=${o}`;
  const group = (t, label, page, render) => {
    if (!page) return null;
    const list = items(page);
    return h('section', { class: 'group', 'aria-label': label },
      h('h2', {}, label, h('span', { class: 'muted' }, ` (${page.total}${page.total_capped ? '+' : ''})`)),
      list.length ? render(list) : h('p', { class: 'muted' }, `No ${label.toLowerCase()} match.`),
      type ? pager(page, hash(t)) : (page.total > list.length ? h('a', { href: hash(t)(0) }, `All ${label.toLowerCase()} →`) : null));
  };
  const cards = (list, href, text, sub, img) => h('ul', { class: 'cards' }, list.map((x) => h('li', {}, h('a', { href: href(x) }, img ? img(x) : null, h('strong', {}, text(x)), h('span', { class: 'sub' }, sub(x))))));
  return [title, tabs,
    group('song', 'Songs', res.songs, (l) => songList(l, { label: 'Matching songs', source: 'search' })),
    group('artist', 'Artists', res.artists, (l) => cards(l, (a) => `#/artist/${a.id}`, (a) => a.name, () => 'Artist')),
    group('album', 'Albums', res.albums, (l) => cards(l, (a) => `#/album/${a.id}`, (a) => a.title, (a) => `${a.type || 'Album'} · ${a.artist ? a.artist.name : ''}`, (a) => coverImg(a, 300, 'card-cover'))),
    group('playlist', 'Playlists', res.playlists, (l) => cards(l, (p) => `#/playlist/${p.id}`, (p) => p.name, (p) => `by ${p.owner ? p.owner.display_name : ''}`)),
  ];
}

async function viewSong([id]) {
  const s = await api.get(`/songs/${Number(id)}`);
  return [
    coverImg(s.album, 300, 'cover', s.album && s.album.title ? `Cover of ${s.album.title}` : ''),
    h('h1', {}, s.title),
    h('p', { class: 'lead' }, artistLinks(s), s.album && s.album.id ? [' · ', h('a', { href: `#/album/${s.album.id}` }, s.album.title)] : null),
    h('dl', { class: 'facts' },
      h('dt', {}, 'Length'), h('dd', {}, formatTime(s.duration_ms / 1000)),
      s.genre ? [h('dt', {}, 'Genre'), h('dd', {}, h('a', { href: '#/?genre=' + encodeURIComponent(s.genre) }, s.genre))] : null,
      h('dt', {}, 'Status'), h('dd', {}, s.status),
      (s.artists || []).length > 1 ? [h('dt', {}, 'Credits'), h('dd', {}, s.artists.map((a) => `${a.name} (${a.role})`).join(', '))] : null),
    songList([s], { label: 'This song', source: 'song' }),
  ];
}

async function viewAlbum([id]) {
  const al = await api.get(`/albums/${Number(id)}`);
  const songs = al.songs || [];
  return [
    coverImg(al, 300, 'cover', `Cover of ${al.title}`),
    h('h1', {}, al.title),
    h('p', { class: 'lead' }, `${{ single: 'Single', ep: 'EP' }[al.type] || 'Album'} by `, h('a', { href: `#/artist/${al.artist.id}` }, al.artist.name), al.release_date ? ` · ${al.release_date}` : ''),
    songs.length ? h('button', { type: 'button', on: { click: () => player.playSongs(songs, 0, 'album') } }, 'Play album') : null,
    songList(songs, { label: 'Album tracks', source: 'album' }),
  ];
}

async function viewArtist([id]) {
  const aid = Number(id);
  const [a, page, albums] = await Promise.all([api.get(`/artists/${aid}`), api.get(`/artist/${aid}/songs`, { limit: 50 }), api.get(`/artists/${aid}/albums`)]);
  const songs = items(page);
  let following = false;
  if (api.loggedIn) {
    const f = await api.get('/users/me/following', { limit: 50 }).catch(() => null);
    following = items(f).some((x) => (x.artist ? x.artist.id : x.id) === aid);
  }
  const follow = h('button', { type: 'button', 'aria-pressed': String(following) }, following ? 'Following' : 'Follow');
  follow.addEventListener('click', () => guard(async () => {
    if (!api.loggedIn) { go('#/login'); return; }
    const now = follow.getAttribute('aria-pressed') !== 'true';
    if (now) await api.post(`/users/me/follow/${aid}`); else await api.del(`/users/me/follow/${aid}`);
    follow.setAttribute('aria-pressed', String(now));
    follow.textContent = now ? 'Following' : 'Follow';
    say(now ? `Following ${a.name}.` : `Unfollowed ${a.name}.`);
  }));
  return [
    h('h1', {}, a.name),
    a.bio ? h('p', { class: 'lead' }, a.bio) : null,
    h('div', { class: 'row' }, songs.length ? h('button', { type: 'button', on: { click: () => player.playSongs(songs, 0, 'artist') } }, 'Play') : null, follow),
    h('h2', {}, 'Songs'),
    songList(songs, { label: `Songs by ${a.name}`, source: 'artist' }),
    items(albums).length ? [h('h2', {}, 'Albums'), h('ul', { class: 'cards' }, items(albums).map((al) => h('li', {}, h('a', { href: `#/album/${al.id}` }, coverImg(al, 300, 'card-cover'), h('strong', {}, al.title), h('span', { class: 'sub' }, `${al.type}${al.release_date ? ' · ' + al.release_date.slice(0, 4) : ''}`)))))] : null,
  ];
}

async function viewPlaylist([id]) {
  const pid = Number(id);
  const pl = await api.get(`/playlist/${pid}`, { include_songs: true });
  const entries = items(pl.songs).map(songOf);
  const mine = api.user && pl.owner && pl.owner.id === api.user.id;
  const ifMatch = () => (pl.snapshot_id ? { 'If-Match': `"${pl.snapshot_id}"` } : {});
  const update = (res) => { if (res && res.snapshot_id) pl.snapshot_id = res.snapshot_id; };

  const reorder = (from, to) => guard(async () => {
    // to is the index the song should end up at.
    const insertBefore = to > from ? to + 1 : to;
    update(await api.request('PUT', `/playlists/${pid}/songs`, { body: { range_start: from, range_length: 1, insert_before: insertBefore }, headers: ifMatch() }));
    const [moved] = entries.splice(from, 1);
    entries.splice(to, 0, moved);
    drawList();
    const btn = list.querySelectorAll('.song')[to]?.querySelector(from < to ? '.down' : '.up');
    if (btn && !btn.disabled) btn.focus(); else list.querySelectorAll('.song')[to]?.querySelector('.play')?.focus();
    say(`Moved “${moved.title}” to position ${to + 1}.`);
  });

  const extra = mine ? (s, i) => [
    h('button', { type: 'button', class: 'icon up', 'aria-label': `Move ${s.title} up`, disabled: i === 0, on: { click: () => reorder(i, i - 1) } }, '↑'),
    h('button', { type: 'button', class: 'icon down', 'aria-label': `Move ${s.title} down`, disabled: i === entries.length - 1, on: { click: () => reorder(i, i + 1) } }, '↓'),
    h('button', { type: 'button', class: 'icon', 'aria-label': `Remove ${s.title} from playlist`, on: { click: () => guard(async () => {
      // One item (a song may be in a playlist more than once).
      update(await api.request('DELETE', s.item_id ? `/playlists/${pid}/items/${s.item_id}` : `/playlists/${pid}/songs/${s.id}`, { headers: ifMatch() }));
      entries.splice(i, 1);
      drawList();
      say(`Removed “${s.title}”.`);
    }) } }, '✕'),
  ] : null;

  const list = h('div', {});
  const lead = h('p', { class: 'lead' });
  function drawList() {
    lead.textContent = `${pl.is_public ? 'Public' : 'Private'} playlist by ${pl.owner ? pl.owner.display_name : 'someone'} · ${entries.length} ${entries.length === 1 ? 'song' : 'songs'}`;
    const ol = songList(entries, { label: 'Playlist songs', source: 'playlist', extra, empty: 'This playlist is empty: add songs with ☰ on any song.' });
    if (mine && entries.length > 1) {
      ol.querySelectorAll('.song').forEach((row, i) => {
        row.draggable = true;
        row.addEventListener('dragstart', (e) => { e.dataTransfer.setData('text/plain', String(i)); row.classList.add('dragging'); });
        row.addEventListener('dragend', () => row.classList.remove('dragging'));
        row.addEventListener('dragover', (e) => e.preventDefault());
        row.addEventListener('drop', (e) => { e.preventDefault(); const from = Number(e.dataTransfer.getData('text/plain')); if (from !== i) reorder(from, i); });
      });
    }
    list.replaceChildren(ol);
  }
  drawList();

  let manage = null;
  if (mine) {
    const form = onSubmit(h('form', { class: 'row wrap', 'aria-label': 'Playlist settings' },
      field('Name', h('input', { name: 'name', value: pl.name, required: true, maxlength: 100 })),
      h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'is_public', checked: !!pl.is_public }), ' Public'),
      h('button', { type: 'submit' }, 'Save')), async (fd) => {
      update(await api.patch(`/playlists/${pid}`, { name: String(fd.get('name')).trim(), is_public: fd.get('is_public') === 'on' }, ifMatch()));
      say('Playlist saved.');
      render();
    });
    const del = h('button', { type: 'button', class: 'danger' }, 'Delete playlist');
    del.addEventListener('click', () => guard(async () => {
      if (del.dataset.confirm !== 'yes') { del.dataset.confirm = 'yes'; del.textContent = 'Press again to delete'; return; }
      await api.del(`/playlists/${pid}`);
      say('Playlist deleted.');
      go('#/library');
    }));
    manage = h('details', { class: 'manage' }, h('summary', {}, 'Edit playlist'), form, del);
  }
  return [
    h('h1', {}, pl.name),
    lead,
    pl.description ? h('p', {}, pl.description) : null,
    entries.length ? h('button', { type: 'button', on: { click: () => player.playSongs(entries, 0, 'playlist') } }, 'Play') : null,
    manage,
    list,
  ];
}

async function viewLibrary() {
  const [lists, liked, following] = await Promise.all([
    myPlaylists(),
    api.get('/users/me/liked-songs', { limit: 5 }),
    api.get('/users/me/following', { limit: 50 }).catch(() => null),
  ]);
  const create = onSubmit(h('form', { class: 'row wrap', 'aria-label': 'New playlist' },
    field('New playlist', h('input', { name: 'name', required: true, maxlength: 100, placeholder: 'Road trip' })),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'is_public' }), ' Public'),
    h('button', { type: 'submit' }, 'Create')), async (fd) => {
    const pl = await api.post('/playlist', { name: String(fd.get('name')).trim(), is_public: fd.get('is_public') === 'on', description: '' });
    say(`Created “${pl.name}”.`);
    go(`#/playlist/${pl.id}`);
  });
  const likedSongs = items(liked).map(songOf);
  return [
    h('h1', {}, 'Your library'),
    h('section', { 'aria-label': 'Playlists' }, h('h2', {}, 'Playlists'), create,
      lists.length ? h('ul', { class: 'cards' }, lists.map((p) => h('li', {}, h('a', { href: `#/playlist/${p.id}` }, h('strong', {}, p.name), h('span', { class: 'sub' }, p.is_public ? 'Public' : 'Private')))))
        : h('p', { class: 'muted' }, 'No playlists yet.')),
    h('section', { 'aria-label': 'Liked songs' }, h('h2', {}, 'Liked songs ', h('a', { href: '#/liked', class: 'small' }, 'See all')),
      songList(likedSongs, { label: 'Liked songs', source: 'liked', empty: 'Songs you like (♡) show up here.' })),
    h('section', { 'aria-label': 'Following' }, h('h2', {}, 'Artists you follow'),
      items(following).length ? h('ul', { class: 'cards' }, items(following).map((x) => { const a = x.artist || x; return h('li', {}, h('a', { href: `#/artist/${a.id}` }, h('strong', {}, a.name), h('span', { class: 'sub' }, 'Artist'))); }))
        : h('p', { class: 'muted' }, 'Follow artists from their pages.')),
    h('p', {}, h('a', { href: '#/recent' }, 'Recently played →')),
  ];
}

async function viewLiked(_, query) {
  const offset = Number(query.get('offset') || 0);
  const page = await api.get('/users/me/liked-songs', { limit: 50, offset: offset || undefined });
  return [h('h1', {}, 'Liked songs'), songList(items(page).map(songOf), { label: 'Liked songs', source: 'liked', empty: 'Songs you like (♡) show up here.' }), pager(page, (o) => `#/liked?offset=${o}`)];
}

async function viewRecent() {
  const page = await api.get('/users/me/recently-played', { limit: 50 });
  return [h('h1', {}, 'Recently played'), songList(items(page).map(songOf), { label: 'Recently played', source: 'recent', empty: 'Songs you play show up here.' })];
}

async function viewProfile() {
  const me = await api.get('/users/me');
  api.setUser(me);
  const form = onSubmit(h('form', { class: 'stack narrow', 'aria-label': 'Profile' },
    field('Display name', h('input', { name: 'display_name', value: me.display_name, required: true, maxlength: 100 })),
    field('Avatar URL', h('input', { name: 'avatar_url', type: 'url', value: me.avatar_url, placeholder: 'https://…' })),
    field('Country', h('input', { name: 'country', value: me.country, maxlength: 2 }), 'Two-letter code.'),
    h('button', { type: 'submit' }, 'Save profile')), async (fd) => {
    const body = { display_name: String(fd.get('display_name')).trim(), avatar_url: String(fd.get('avatar_url')).trim(), country: String(fd.get('country')).trim().toUpperCase() };
    api.setUser(await api.patch('/users/me', body));
    say('Profile saved.');
  });
  return [
    h('h1', {}, 'Your profile'),
    h('dl', { class: 'facts' }, h('dt', {}, 'Email'), h('dd', {}, me.email), h('dt', {}, 'Plan'), h('dd', {}, me.tier), h('dt', {}, 'Role'), h('dd', {}, me.role)),
    form,
    await subsonicAccess(api, onSubmit, say),
    h('button', { type: 'button', class: 'ghost', on: { click: async () => { player.audio.pause(); await api.logout(); say('Logged out.'); go('#/'); } } }, 'Log out'),
  ];
}

// ---- artist studio ----

async function viewStudio() {
  const artists = items(await api.get('/users/me/artists'));
  const out = [h('h1', {}, 'Artist studio')];
  const become = onSubmit(h('form', { class: 'stack narrow', 'aria-label': 'Become an artist' },
    h('h2', {}, artists.length ? 'Add another artist' : 'Become an artist'),
    field('Artist name', h('input', { name: 'name', required: true, maxlength: 200 })),
    field('Bio', h('textarea', { name: 'bio', rows: 3, maxlength: 4000 })),
    h('button', { type: 'submit' }, 'Create artist')), async (fd) => {
    const a = await api.post('/artists', { name: String(fd.get('name')).trim(), bio: String(fd.get('bio') || '') });
    say(`You are now the artist ${a.name}.`);
    render();
  });
  if (!artists.length) {
    out.push(h('p', { class: 'lead' }, 'Upload your music to Riff: create your artist, an album, then upload songs.'), become);
    return out;
  }
  // The owner sees songs of every status on their albums.
  const albumPages = await Promise.all(artists.map((a) => api.get(`/artists/${a.id}/albums`)));
  const albums = await Promise.all(albumPages.flatMap(items).map((al) => api.get(`/albums/${al.id}`)));

  const albumForm = onSubmit(h('form', { class: 'row wrap', 'aria-label': 'New album' },
    field('Artist', h('select', { name: 'artist_id' }, artists.map((a) => h('option', { value: a.id }, a.name)))),
    field('Album title', h('input', { name: 'title', required: true, maxlength: 200 })),
    field('Type', h('select', { name: 'type' }, ['album', 'single', 'ep'].map((t) => h('option', { value: t }, t)))),
    h('button', { type: 'submit' }, 'Create album')), async (fd) => {
    const al = await api.post('/albums', { artist_id: Number(fd.get('artist_id')), title: String(fd.get('title')).trim(), type: fd.get('type') });
    say(`Created the album “${al.title}”.`);
    render();
  });

  const uploads = h('ul', { class: 'uploads', 'aria-label': 'Uploads' });
  const upload = albums.length ? onSubmit(h('form', { class: 'stack narrow', 'aria-label': 'Upload a song' },
    field('Album', h('select', { name: 'album_id' }, albums.map((al) => h('option', { value: al.id }, `${al.title} (${al.artist.name})`)))),
    field('Title', h('input', { name: 'title', required: true, maxlength: 200 })),
    field('Track number', h('input', { name: 'track_no', type: 'number', min: 1, value: 1 })),
    field('Genre', h('input', { name: 'genre', maxlength: 50, placeholder: 'ambient' })),
    h('label', { class: 'check' }, h('input', { type: 'checkbox', name: 'explicit' }), ' Explicit'),
    field('Audio file', h('input', { name: 'audio', type: 'file', accept: 'audio/*,.flac,.wav,.mp3,.m4a,.ogg', required: true }), 'FLAC, WAV, MP3, AAC or Ogg.'),
    h('button', { type: 'submit' }, 'Upload')), async (fd) => {
    const form = new FormData();
    for (const k of ['title', 'album_id', 'track_no', 'genre']) if (fd.get(k)) form.set(k, fd.get(k));
    form.set('explicit', fd.get('explicit') === 'on' ? 'true' : 'false');
    form.set('file', fd.get('audio'));
    const item = uploadItem(String(fd.get('title')));
    uploads.prepend(item.el);
    main.querySelector('.no-songs')?.remove();
    try {
      const song = await api.upload('POST', '/songs', form, item.progress);
      item.track(song);
      upload.reset();
    } catch (err) {
      item.failed(err.message);
      throw err;
    }
  }) : h('p', { class: 'muted' }, 'Create an album first, then upload songs to it.');

  const songs = albums.flatMap((al) => al.songs || []).sort((a, b) => b.id - a.id);
  for (const s of songs) { const it = uploadItem(s.title); uploads.append(it.el); it.track(s); }

  out.push(
    h('section', { 'aria-label': 'Your artists' }, h('h2', {}, 'Your artists'), h('ul', { class: 'cards' }, artists.map((a) => h('li', {}, h('a', { href: `#/artist/${a.id}` }, h('strong', {}, a.name), h('span', { class: 'sub' }, 'Artist page')))))),
    h('section', { 'aria-label': 'Albums' }, h('h2', {}, 'Albums'), albums.length ? h('ul', { class: 'cards' }, albums.map(studioAlbum)) : null, albumForm),
    h('section', { 'aria-label': 'Upload' }, h('h2', {}, 'Upload a song'), upload),
    h('section', { 'aria-label': 'Your songs' }, h('h2', {}, 'Your songs'), uploads, songs.length ? null : h('p', { class: 'muted no-songs' }, 'Songs you upload show up here.')),
    h('details', {}, h('summary', {}, 'Add another artist'), become),
  );
  return out;
}

/**
 * studioAlbum is an album card in the studio, with a control that sets its
 * cover (PUT /albums/{id}/cover: the file is the body; the server checks
 * it and re-encodes it).
 */
function studioAlbum(al) {
  const link = h('a', { href: `#/album/${al.id}` }, coverImg(al, 300, 'card-cover'), h('strong', {}, al.title), h('span', { class: 'sub' }, al.type));
  const input = h('input', { type: 'file', accept: 'image/jpeg,image/png,image/webp', class: 'cover-file' });
  input.addEventListener('change', () => guard(async () => {
    const file = input.files && input.files[0];
    if (!file) return;
    const updated = await api.upload('PUT', `/albums/${al.id}/cover`, file, () => {});
    link.firstChild.replaceWith(coverImg(updated, 300, 'card-cover'));
    input.value = '';
    say(`Cover of “${al.title}” updated.`);
  }));
  return h('li', { class: 'studio-album' }, link, field(`Cover for ${al.title}`, input, 'JPEG, PNG or WebP, up to 10 MB.'));
}

/** uploadItem is one upload: its progress bar, then its processing status. */
function uploadItem(title) {
  const bar = h('progress', { max: 100, value: 0, 'aria-label': `Upload of ${title}` });
  const state = h('span', { class: 'state', role: 'status' }, 'Uploading…');
  const actions = h('span', { class: 'actions' });
  const name = h('strong', {}, title);
  const el = h('li', { class: 'upload' }, name, bar, state, actions);
  let timer;
  const it = {
    el,
    progress(sent, total) {
      bar.value = Math.round((sent / total) * 100);
      el.dataset.uploaded = String(bar.value);
      state.textContent = `Uploading… ${Math.round((sent / total) * 100)}% (${(sent / 1048576).toFixed(1)} of ${(total / 1048576).toFixed(1)} MiB)`;
    },
    failed(msg) { bar.remove(); state.textContent = `Upload failed: ${msg}`; el.classList.add('failed'); },
    track(song) {
      name.replaceChildren(h('a', { href: `#/song/${song.id}` }, song.title));
      el.dataset.songId = song.id;
      const show = (s) => {
        el.dataset.status = s.status;
        const job = s.processing || null;
        const pct = job && job.state !== 'queued' && typeof job.percent === 'number' ? job.percent : null;
        if (s.status === 'ready') {
          bar.remove();
          const replacing = job && (job.state === 'queued' || job.state === 'running');
          state.textContent = replacing ? `Ready · new audio processing${pct === null ? '' : ` ${pct}%`}…` : 'Ready';
          if (el.dataset.shown !== 'ready') {
            el.dataset.shown = 'ready';
            actions.replaceChildren(
              h('button', { type: 'button', 'aria-label': `Play ${s.title}`, on: { click: () => player.playSongs([s], 0, 'studio') } }, 'Play'),
              replaceButton(s), takedownButton(s, el));
          }
          return !replacing;
        }
        if (s.status === 'failed') {
          bar.remove();
          state.textContent = `Processing failed: ${(job && job.error) || 'no reason given'}`;
          el.classList.add('failed');
          actions.replaceChildren(replaceButton(s), takedownButton(s, el));
          return true;
        }
        if (s.status === 'taken_down' || s.status === 'deleted') { bar.remove(); state.textContent = 'Taken down'; actions.replaceChildren(); return true; }
        el.dataset.sawProcessing = 'yes';
        bar.setAttribute('aria-label', `Processing of ${s.title}`);
        if (pct === null) bar.removeAttribute('value'); else bar.value = pct;
        state.textContent = `Processing${pct === null ? '' : ` ${pct}%`}…${job && job.stage ? ` (${job.stage})` : job && job.state === 'queued' ? ' (waiting in line)' : ''}`;
        actions.replaceChildren(takedownButton(s, el));
        return false;
      };
      const poll = async () => {
        if (!el.isConnected && timer) return;
        let s;
        try { s = await api.get(`/songs/${song.id}`); } catch (err) { state.textContent = `Could not check the status: ${err.message}`; timer = setTimeout(poll, 5000); return; }
        if (!show(s)) timer = setTimeout(poll, 1000);
      };
      if (!show(song)) timer = setTimeout(poll, 500);
    },
  };
  return it;
}

function replaceButton(song) {
  const input = h('input', { type: 'file', accept: 'audio/*,.flac,.wav,.mp3,.m4a,.ogg', class: 'visually-hidden', 'aria-label': `New audio for ${song.title}`, tabindex: -1 });
  const btn = h('button', { type: 'button', 'aria-label': `Replace audio of ${song.title}`, on: { click: () => input.click() } }, 'Replace audio');
  input.addEventListener('change', () => guard(async () => {
    if (!input.files.length) return;
    const form = new FormData();
    form.set('file', input.files[0]);
    btn.disabled = true;
    try {
      await api.upload('PUT', `/songs/${song.id}/audio`, form, (sent, total) => { btn.textContent = `Uploading ${Math.round((sent / total) * 100)}%`; });
    } finally { btn.disabled = false; btn.textContent = 'Replace audio'; }
    say(`New audio for “${song.title}” is processing.`);
    render();
  }));
  return h('span', { class: 'replace' }, btn, input);
}

function takedownButton(song, el) {
  const btn = h('button', { type: 'button', class: 'danger', 'aria-label': `Take down ${song.title}` }, 'Take down');
  btn.addEventListener('click', () => guard(async () => {
    if (btn.dataset.confirm !== 'yes') { btn.dataset.confirm = 'yes'; btn.textContent = 'Press again to take down'; return; }
    await api.del(`/songs/${song.id}`);
    el.remove();
    say(`“${song.title}” was taken down.`);
  }));
  return btn;
}

// ---- chrome: navigation, search box, player bar ----

const searchForm = document.getElementById('search');
const searchInput = searchForm.elements.q;
searchForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = searchInput.value.trim();
  if (q) go('#/search?q=' + encodeURIComponent(q));
});

const nav = document.getElementById('nav');
function updateNav(current) {
  const link = (hash, label, name) => h('a', { href: hash, 'aria-current': current === name ? 'page' : null }, label);
  nav.replaceChildren(...(api.loggedIn
    ? [link('#/', 'Home', ''), link('#/library', 'Library', 'library'), link('#/studio', 'Studio', 'studio'), link('#/profile', api.user.display_name || 'Profile', 'profile')]
    : [link('#/', 'Home', ''), link('#/login', 'Log in', 'login'), link('#/register', 'Sign up', 'register')]));
}
api.onChange(() => updateNav(parseRoute().parts[0] || ''));

const bar = {
  cover: document.getElementById('np-cover'),
  title: document.getElementById('np-title'),
  artist: document.getElementById('np-artist'),
  play: document.getElementById('btn-play'),
  prev: document.getElementById('btn-prev'),
  next: document.getElementById('btn-next'),
  seek: document.getElementById('seek'),
  time: document.getElementById('time'),
  volume: document.getElementById('volume'),
  quality: document.getElementById('quality'),
  queueBtn: document.getElementById('btn-queue'),
  queue: document.getElementById('queue'),
  error: document.getElementById('player-error'),
};
bar.play.addEventListener('click', () => player.toggle());
bar.prev.addEventListener('click', () => player.prev());
bar.next.addEventListener('click', () => player.next());
bar.seek.addEventListener('input', () => player.seek(Number(bar.seek.value)));
bar.volume.addEventListener('input', () => player.setVolume(Number(bar.volume.value) / 100));
bar.queueBtn.addEventListener('click', () => {
  const open = bar.queue.hidden;
  bar.queue.hidden = !open;
  bar.queueBtn.setAttribute('aria-expanded', String(open));
  if (open) drawQueue();
});

function drawQueue() {
  if (bar.queue.hidden) return;
  bar.queue.replaceChildren(h('h2', {}, 'Queue'), player.queue.length ? h('ol', {}, player.queue.map((s, i) => h('li', { 'aria-current': i === player.index ? 'true' : null },
    h('button', { type: 'button', class: 'link', 'aria-label': `Play ${s.title} from the queue`, on: { click: () => player.load(i) } }, s.title),
    i !== player.index ? h('button', { type: 'button', class: 'icon', 'aria-label': `Remove ${s.title} from the queue`, on: { click: () => { player.removeAt(i); drawQueue(); } } }, '✕') : null))) : h('p', { class: 'muted' }, 'The queue is empty.'));
}

let lastQueueKey = '';
player.addEventListener('change', () => {
  const s = player.current;
  const a = player.audio;
  bar.title.textContent = s ? s.title : 'Nothing playing';
  const cover = s && s.album && s.album.cover_sizes ? s.album.cover_sizes['64'] : '';
  if (bar.cover.getAttribute('src') !== cover) { if (cover) bar.cover.src = cover; else bar.cover.removeAttribute('src'); }
  bar.cover.hidden = !cover;
  bar.artist.textContent = s ? (s.artists || []).map((x) => x.name).join(', ') : '';
  bar.play.dataset.state = player.playing ? 'playing' : 'paused';
  bar.play.setAttribute('aria-label', player.playing ? 'Pause' : 'Play');
  bar.prev.disabled = !s;
  bar.next.disabled = !s || player.index + 1 >= player.queue.length;
  const dur = Number.isFinite(a.duration) ? a.duration : (s && s.duration_ms ? s.duration_ms / 1000 : 0);
  bar.seek.max = String(Math.max(1, Math.floor(dur)));
  if (document.activeElement !== bar.seek) bar.seek.value = String(Math.floor(a.currentTime));
  bar.seek.setAttribute('aria-valuetext', `${formatTime(a.currentTime)} of ${formatTime(dur)}`);
  bar.seek.disabled = !s;
  bar.time.textContent = `${formatTime(a.currentTime)} / ${formatTime(dur)}`;
  bar.volume.value = String(Math.round(a.volume * 100));
  const tier = api.user ? api.user.tier : '';
  bar.quality.textContent = player.quality ? `${player.quality}${tier ? ` · ${tier}` : ''}` : '';
  bar.error.textContent = player.error;
  const key = player.queue.map((x) => x.id).join(',') + ':' + player.index;
  if (key !== lastQueueKey) { lastQueueKey = key; drawQueue(); }
});
player.addEventListener('error', (e) => showError(e.detail));

// Space toggles playback unless typing or on a control.
document.addEventListener('keydown', (e) => {
  if (e.key !== ' ' || e.target.closest('input, textarea, select, button, a, [contenteditable]')) return;
  e.preventDefault();
  player.toggle();
});

document.getElementById('skip').addEventListener('click', () => { main.focus(); });

window.addEventListener('hashchange', render);
window.riff = { api, player, reporter }; // for the end-to-end test and the curious
player.changed();
render();
