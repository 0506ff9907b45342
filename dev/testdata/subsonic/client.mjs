// client.mjs drives Riff's Subsonic API (/rest/*) with subsonic-api, a
// Subsonic/OpenSubsonic client library from npm, as an app would, and
// validates every answer against the OpenSubsonic API description
// (opensubsonic/, JSON Schema 2020-12 in OpenAPI files): the JSON the
// library receives, and the same request again as XML, read into the
// shape the schema describes (attributes and repeated elements, typed by
// the schema) and validated the same way.
//
// dev/subsonic_test.go runs it against `riff dev`:
//   node client.mjs  (env: RIFF_API, RIFF_TOKEN, RIFF_APIKEY, RIFF_USER, RIFF_APP_PASSWORD)
// and reads its last line: a JSON object with the media URLs it was
// redirected to and the song's duration (s); the Go test decodes them with
// ffmpeg through the edge.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { join, dirname } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import Ajv2020 from "ajv/dist/2020.js";
import { XMLParser } from "fast-xml-parser";
import { SubsonicAPI } from "subsonic-api";

const here = dirname(fileURLToPath(import.meta.url));
const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const api = env("RIFF_API");

// --- The schema ---------------------------------------------------------

const docs = new Map(); // file URL -> parsed JSON
(function load(dir) {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) load(p);
    else if (name.endsWith(".json")) docs.set(pathToFileURL(p).href, JSON.parse(readFileSync(p, "utf8")));
  }
})(join(here, "opensubsonic", "openapi"));

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
for (const [url, doc] of docs) {
  if (url.includes("/schemas/") || /\/endpoints\/[^/]+\/[^/]+\.json$/.test(url)) ajv.addSchema(doc, url);
}

// responseSchema returns the schema (and the URL it is relative to) of an
// endpoint's 200 answer.
function responseSchema(endpoint) {
  let url = pathToFileURL(join(here, "opensubsonic", "openapi", "endpoints", endpoint + ".json")).href;
  let r = docs.get(url)?.get?.responses?.["200"];
  if (!r) throw new Error(`no description of ${endpoint}`);
  if (r.$ref) {
    url = new URL(r.$ref, url).href;
    r = docs.get(url);
  }
  const json = r.content["application/json"];
  if (!json) {
    // Media endpoints: their errors are the common envelope.
    return { schema: { $ref: "../schemas/SubsonicResponse.json" }, base: pathToFileURL(join(here, "opensubsonic", "openapi", "responses", "x.json")).href };
  }
  return { schema: json.schema, base: url };
}

const validators = new Map();
function validator(endpoint) {
  if (!validators.has(endpoint)) {
    const { schema, base } = responseSchema(endpoint);
    validators.set(endpoint, ajv.compile({ $id: new URL(`./__answer_${endpoint}.json`, base).href, ...schema }));
  }
  return validators.get(endpoint);
}

// deref follows $ref and merges allOf, giving an object schema's
// properties or an array's items (for reading XML).
function deref(schema, base) {
  while (schema && schema.$ref) {
    base = new URL(schema.$ref, base).href;
    schema = docs.get(base);
  }
  if (!schema) return { schema: {}, base };
  if (schema.allOf) {
    const merged = { type: "object", properties: {} };
    for (const part of schema.allOf) {
      const d = deref(part, base);
      if (d.schema.type && d.schema.type !== "object") return d;
      for (const [k, v] of Object.entries(d.schema.properties || {})) merged.properties[k] = d.merged ? v : { s: v, base: d.base };
    }
    return { schema: merged, base, merged: true };
  }
  return { schema, base };
}

function propSchema(objSchema, name) {
  const p = objSchema.schema.properties?.[name];
  if (!p) return null;
  return objSchema.merged ? deref(p.s, p.base) : deref(p, objSchema.base);
}

function typed(value, s) {
  const t = s?.schema?.type;
  if (t === "integer" || t === "number") return Number(value);
  if (t === "boolean") return value === "true";
  return value;
}

// fromXML reads an element (fast-xml-parser, attributes prefixed "@_",
// text "#text") into the JSON shape of schema s.
function fromXML(el, s) {
  if (typeof el !== "object") {
    if (el === "" && (s?.merged || s?.schema?.type === "object" || s?.schema?.properties)) return {}; // <empty/>
    return typed(el, s);
  }
  const out = {};
  for (const [k, v] of Object.entries(el)) {
    if (k.startsWith("@_")) {
      const name = k.slice(2);
      if (name === "xmlns") continue;
      out[name] = typed(v, propSchema(s, name));
    } else if (k === "#text") {
      out.value = String(v);
    } else {
      const ps = propSchema(s, k);
      const list = Array.isArray(v) ? v : [v];
      if (ps?.schema?.type === "array") {
        const items = deref(ps.schema.items, ps.base);
        out[k] = list.map((x) => fromXML(x, items));
      } else {
        out[k] = fromXML(list[0], ps || { schema: {}, base: "" });
      }
    }
  }
  return out;
}

const xml = new XMLParser({
  ignoreAttributes: false, parseAttributeValue: false, parseTagValue: false,
  isArray: (_name, _path, _leaf, isAttribute) => !isAttribute,
});

const failures = [];
function check(ok, what) {
  if (!ok) failures.push(what);
  return ok;
}

// validate checks a JSON answer of endpoint (its subsonic-response body)
// against the schema, and that it succeeded unless wantCode is given.
function validate(endpoint, inner, wantCode) {
  const v = validator(endpoint);
  if (!v({ "subsonic-response": inner })) {
    check(false, `${endpoint}: JSON answer does not match the schema: ${ajv.errorsText(v.errors)}\n${JSON.stringify(inner).slice(0, 600)}`);
  }
  if (wantCode === undefined) check(inner.status === "ok", `${endpoint}: ${JSON.stringify(inner.error)}`);
  else check(inner.status === "failed" && inner.error?.code === wantCode, `${endpoint}: want error ${wantCode}, got ${JSON.stringify(inner)}`);
  return inner;
}

// validateXML asks the same again in XML and validates that.
async function validateXML(endpoint, params, auth, wantCode) {
  const q = new URLSearchParams({ v: "1.16.1", c: "riff-test", ...auth });
  for (const [k, v] of Object.entries(params || {})) {
    for (const x of Array.isArray(v) ? v : [v]) q.append(k, String(x));
  }
  const res = await fetch(`${api}/rest/${endpoint}.view?${q}`);
  const text = await res.text();
  check(/^text\/xml/.test(res.headers.get("content-type") || ""), `${endpoint}: XML content type ${res.headers.get("content-type")}`);
  const doc = xml.parse(text);
  const root = doc["subsonic-response"]?.[0];
  if (!check(root && root["@_xmlns"] === "http://subsonic.org/restapi", `${endpoint}: XML root ${text.slice(0, 200)}`)) return;
  const { schema, base } = responseSchema(endpoint);
  const top = deref(schema, base);
  const outer = propSchema(top, "subsonic-response");
  const branches = outer.schema.oneOf || [outer.schema];
  const branch = deref(branches[root["@_status"] === "ok" ? 0 : branches.length - 1], outer.base);
  const inner = fromXML(root, branch);
  const v = validator(endpoint);
  if (!v({ "subsonic-response": inner })) {
    check(false, `${endpoint}: XML answer does not match the schema: ${ajv.errorsText(v.errors)}\n${text.slice(0, 600)}`);
  }
  if (wantCode === undefined) check(inner.status === "ok", `${endpoint}: XML status ${inner.status}`);
  else check(inner.status === "failed" && inner.error?.code === wantCode, `${endpoint}: XML: want error ${wantCode}: ${text.slice(0, 300)}`);
}

// --- The run -------------------------------------------------------------

// recording is the clients' fetch: it keeps the last body as sent, since
// the library turns some strings (dates) into objects.
let lastBody = "";
const recording = async (url, init) => {
  const res = await fetch(url, init);
  lastBody = await res.clone().text();
  return res;
};
// sent returns the last answer's subsonic-response as sent.
const sent = () => JSON.parse(lastBody)["subsonic-response"];

const apiKey = env("RIFF_APIKEY");
const byKey = new SubsonicAPI({ url: api, auth: { apiKey }, fetch: recording });
const byToken = new SubsonicAPI({ url: api, auth: { username: env("RIFF_USER"), password: env("RIFF_APP_PASSWORD") }, fetch: recording });
const byTokenPost = new SubsonicAPI({ url: api, auth: { username: env("RIFF_USER"), password: env("RIFF_APP_PASSWORD") }, post: true, fetch: recording });
const wrong = new SubsonicAPI({ url: api, auth: { username: env("RIFF_USER"), password: "not-the-password" }, fetch: recording });
const badKey = new SubsonicAPI({ url: api, auth: { apiKey: "riffsk_not-a-key" }, fetch: recording });
const keyAuth = { apiKey };

// Riff's own API, to see the same data there.
async function riff(path, init = {}) {
  const res = await fetch(api + path, { ...init, headers: { Authorization: `Bearer ${env("RIFF_TOKEN")}`, ...(init.headers || {}) } });
  check(res.ok, `Riff ${path}: ${res.status}`);
  return res.status === 204 ? null : res.json();
}

// call runs a library method, validates the JSON as sent and the XML
// answer, and returns what the library made of it.
async function call(client, method, endpoint, params) {
  const got = await client[method](params);
  validate(endpoint, sent());
  await validateXML(endpoint, params, keyAuth);
  return got;
}

// plain runs a library method and validates its JSON as sent (want: an
// error code, or undefined for success).
async function plain(client, method, endpoint, params, want) {
  const got = await client[method](params);
  validate(endpoint, sent(), want);
  return got;
}

// Authentication: API key, token + salt (GET and POST), and refusals.
await call(byKey, "ping", "ping");
await plain(byToken, "ping", "ping", undefined);
await plain(byTokenPost, "ping", "ping", undefined);
await plain(wrong, "ping", "ping", undefined, 40);
await plain(badKey, "ping", "ping", undefined, 44);
await call(byKey, "getLicense", "getLicense");
const ext = await call(byKey, "getOpenSubsonicExtensions", "getOpenSubsonicExtensions");
check(ext.openSubsonicExtensions.some((e) => e.name === "apiKeyAuthentication"), "apiKeyAuthentication not announced");

// Browsing.
await call(byKey, "getMusicFolders", "getMusicFolders");
await call(byToken, "getIndexes", "getIndexes");
const { artists } = await call(byKey, "getArtists", "getArtists");
const firstArtist = artists.index[0].artist[0];
const { artist } = await call(byToken, "getArtist", "getArtist", { id: firstArtist.id });
check(artist.album.length > 0, "getArtist: no albums");
const { album } = await call(byKey, "getAlbum", "getAlbum", { id: artist.album[0].id });
check(album.song.length > 0 && album.songCount === album.song.length, "getAlbum: songs");
const song = album.song[0];
await call(byKey, "getSong", "getSong", { id: song.id });
const { genres } = await call(byKey, "getGenres", "getGenres");
for (const type of ["newest", "frequent", "recent", "random", "alphabeticalByName", "alphabeticalByArtist", "starred"]) {
  await call(byKey, "getAlbumList2", "getAlbumList2", { type, size: 5 });
}
if (genres.genre.length > 0) {
  const g = genres.genre[0].value;
  const byGenre = await call(byKey, "getAlbumList2", "getAlbumList2", { type: "byGenre", genre: g });
  check(byGenre.albumList2.album.length > 0, "byGenre: no albums");
  const sbg = await call(byKey, "getSongsByGenre", "getSongsByGenre", { genre: g, count: 3 });
  check(sbg.songsByGenre.song.length > 0, "getSongsByGenre: none");
}
const rnd = await call(byKey, "getRandomSongs", "getRandomSongs", { size: 3 });
check(rnd.randomSongs.song.length > 0, "getRandomSongs: none");
const top = await call(byKey, "getTopSongs", "getTopSongs", { artist: firstArtist.name, count: 5 });
check(top.topSongs.song.length > 0, "getTopSongs: none");

// Search, with counts and offsets.
const found = await call(byToken, "search3", "search3", { query: song.title.split(" ")[0], songCount: 5, albumCount: 5, artistCount: 5 });
check(found.searchResult3.song.some((s) => s.id === song.id), `search3: ${song.title} not found`);
const paged = await call(byKey, "search3", "search3", { query: firstArtist.name, artistCount: 0, albumCount: 0, songCount: 1, songOffset: 1 });
check(paged.searchResult3.song.length <= 1 && !paged.searchResult3.artist?.length, "search3: counts and offsets");

// Playlists: made and edited here, seen in Riff's API.
const songIds = album.song.map((s) => s.id);
const created = await call(byKey, "createPlaylist", "createPlaylist", { name: "Subsonic mix", songId: songIds });
const plID = created.playlist.id;
check(created.playlist.songCount === songIds.length, "createPlaylist: songCount");
let mine = await riff(`/playlist/${plID}?include_songs=true`);
check(mine.name === "Subsonic mix" && mine.item_count === songIds.length, `Riff's playlist after create: ${JSON.stringify(mine)}`);
await plain(byToken, "updatePlaylist", "updatePlaylist", { playlistId: plID, name: "Subsonic mix, edited", comment: "from an app", songIndexToRemove: [0], songIdToAdd: [song.id] });
mine = await riff(`/playlist/${plID}?include_songs=true`);
check(mine.name === "Subsonic mix, edited" && mine.description === "from an app" && mine.item_count === songIds.length &&
  String(mine.songs.items.at(-1).song.id) === song.id, `Riff's playlist after update: ${JSON.stringify(mine)}`);
await call(byKey, "getPlaylists", "getPlaylists");
const got = await call(byKey, "getPlaylist", "getPlaylist", { id: plID });
check(got.playlist.entry.length === songIds.length, "getPlaylist: entries");
const scratch = await plain(byKey, "createPlaylist", "createPlaylist", { name: "Scratch" });
await plain(byKey, "deletePlaylist", "deletePlaylist", { id: scratch.playlist.id });
const gone = await fetch(`${api}/playlist/${scratch.playlist.id}`, { headers: { Authorization: `Bearer ${env("RIFF_TOKEN")}` } });
check(gone.status === 404, `deleted playlist: ${gone.status}`);

// The same edits in XML, repeated where that changes nothing.
await validateXML("updatePlaylist", { playlistId: plID, comment: "from an app" }, keyAuth);
const scratch2 = await plain(byKey, "createPlaylist", "createPlaylist", { name: "Scratch 2" });
await validateXML("deletePlaylist", { id: scratch2.playlist.id }, keyAuth);

// Stars are likes and follows.
await plain(byKey, "star", "star", { id: song.id, artistId: firstArtist.id });
const liked = await riff("/users/me/liked-songs");
check(liked.items.some((l) => String(l.song.id) === song.id), "starred song not among liked songs");
const following = await riff("/users/me/following");
check(following.items.some((f) => String(f.artist.id) === firstArtist.id), "starred artist not followed");
const starred = await call(byKey, "getStarred2", "getStarred2");
check(starred.starred2.song.some((s) => s.id === song.id), "getStarred2: song");
await plain(byToken, "unstar", "unstar", { artistId: firstArtist.id });
await validateXML("star", { id: song.id }, keyAuth);
await validateXML("unstar", { artistId: firstArtist.id }, keyAuth);

// Scrobble: the play is counted.
const before = (await riff("/users/me/recently-played")).total;
await plain(byKey, "scrobble", "scrobble", { id: song.id, submission: true });
const after = await riff("/users/me/recently-played");
check(after.total === before + 1 && String(after.items[0].song.id) === song.id, `scrobble not counted: ${before} -> ${JSON.stringify(after).slice(0, 300)}`);

await validateXML("scrobble", { id: song.id, submission: false }, keyAuth);
await validateXML("download", { id: song.id }, keyAuth, 50);

// Media: redirects to signed edge URLs (the Go test decodes them).
const manual = (url, init) => fetch(url, { ...init, redirect: "manual" });
const media = new SubsonicAPI({ url: api, auth: { apiKey }, fetch: manual });
const media2 = new SubsonicAPI({ url: api, auth: { username: env("RIFF_USER"), password: env("RIFF_APP_PASSWORD") }, fetch: manual });
const where = async (res, what) => {
  check(res.status === 302, `${what}: ${res.status} ${await res.text()}`);
  return res.headers.get("location");
};
const urls = {
  stream: await where(await media.stream({ id: song.id }), "stream"),
  stream64: await where(await media2.stream({ id: song.id, maxBitRate: 64 }), "stream maxBitRate=64"),
  aac: await where(await media.stream({ id: song.id, format: "aac" }), "stream format=aac"),
  hls: await where(await media.hls({ id: song.id }), "hls.m3u8"),
};
check(/\/ogg_320\.ogg$/.test(urls.stream) && /\/ogg_64\.ogg$/.test(urls.stream64) && /\/aac_320\.mp4$/.test(urls.aac) && /\/master\.m3u8$/.test(urls.hls),
  `media URLs ${JSON.stringify(urls)}`);
validate("download", await (await media.download({ id: song.id })).json().then((b) => b["subsonic-response"]), 50);

// Cover art: the cover when the album has one, error 70 otherwise.
const cover = await media.getCoverArt({ id: album.coverArt || `al-${album.id}`, size: 300 });
if (album.coverArt) {
  const loc = await where(cover, "getCoverArt");
  const img = await fetch(loc);
  check(img.ok && /^image\//.test(img.headers.get("content-type") || ""), `cover ${loc}: ${img.status} ${img.headers.get("content-type")}`);
  urls.cover = loc;
} else {
  validate("getCoverArt", (await cover.json())["subsonic-response"], 70);
  await validateXML("getCoverArt", { id: `al-${album.id}` }, keyAuth, 70);
}

if (failures.length > 0) {
  console.error(failures.join("\n"));
  process.exit(1);
}
console.log(JSON.stringify({ urls, duration: song.duration }));
