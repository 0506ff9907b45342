// events.js: play events for POST /events, batched and retried. Events
// wait in localStorage until the server has them, so a closed tab or a
// network outage loses none; each carries its own id so a retried batch
// is not counted twice.

const KEY = 'riff.events';
const MAX_BATCH = 50;
const MAX_KEPT = 500;
// SOURCES are the sources the server knows; the rest are sent as other.
const SOURCES = new Set(['search', 'playlist', 'album', 'artist', 'other']);

/** newID returns a random UUID (v4), also outside secure contexts. */
export function newID() {
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = [...b].map((x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Reporter sends play events in batches. */
export class Reporter {
  constructor(api, { interval = 15_000 } = {}) {
    this.api = api;
    this.interval = interval;
    this.backoff = interval;
    this.timer = null;
    this.sending = false;
    this.accepted = 0; // events the server took, since the page loaded
    this.rejected = 0; // events dropped because the server refused them
    window.addEventListener('pagehide', () => this.flush({ keepalive: true }));
    api.onChange((user) => { if (user) this.schedule(1000); });
    this.schedule(interval);
  }

  pending() {
    try { return JSON.parse(localStorage.getItem(KEY) || '[]'); } catch { return []; }
  }

  store(list) { localStorage.setItem(KEY, JSON.stringify(list.slice(-MAX_KEPT))); }

  /** add queues one event: {song_id, started_at, ms_played, source, completed}. */
  add(ev) {
    const source = SOURCES.has(ev.source) ? ev.source : 'other';
    this.store([...this.pending(), { event_id: newID(), ...ev, source }]);
    this.schedule(2000);
  }

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), ms);
  }

  async flush({ keepalive = false } = {}) {
    const list = this.pending();
    if (this.sending || !list.length || !this.api.loggedIn) return;
    const batch = list.slice(0, MAX_BATCH);
    this.sending = true;
    try {
      await this.api.request('POST', '/events', { body: { events: batch }, keepalive });
      this.done(batch);
      this.accepted += batch.length;
      this.backoff = this.interval;
      if (list.length > batch.length) this.schedule(0);
    } catch (err) {
      // A batch the server refuses as invalid will never be taken: drop
      // it. Everything else (offline, 5xx, rate limits) is retried later.
      if (err.status >= 400 && err.status < 500 && ![401, 408, 429].includes(err.status)) {
        this.done(batch);
        this.rejected += batch.length;
      }
      else {
        this.backoff = Math.min(this.backoff * 2, 5 * 60_000);
        this.schedule(this.backoff);
      }
    } finally {
      this.sending = false;
    }
  }

  done(batch) {
    const sent = new Set(batch.map((e) => e.event_id));
    this.store(this.pending().filter((e) => !sent.has(e.event_id)));
  }
}
