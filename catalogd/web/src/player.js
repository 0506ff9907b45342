// player.js: the audio player. It plays a song's signed HLS URL with
// hls.js where the browser has Media Source Extensions, natively where
// it plays HLS itself (Safari), and the Ogg stream otherwise. It keeps the
// queue, reports plays and drives the Media Session API (media keys, lock
// screens).
import Hls from 'hls.js/light';

/** Player is the one audio element of the app and its queue. */
export class Player extends EventTarget {
  constructor(audio, api, reporter) {
    super();
    this.audio = audio;
    this.api = api;
    this.reporter = reporter;
    this.queue = [];
    this.index = -1;
    this.hls = null;
    this.quality = '';
    this.error = '';
    this.play = null; // the play being measured: {song_id, started_at, ms, source}
    this.lastTime = 0;
    this.loadSeq = 0;
    this.log = []; // the last playback events, for debugging (window.riff.player.log)
    // Counters a test reads (window.riff.player): a stall is playback
    // stopping for want of data mid-play (not while a load or seek
    // settles; hls.js's bufferStalledError or a waiting event with under
    // a second buffered ahead), counted once until it plays again; a recovery is the
    // player resetting hls.js after an error. Both hide trouble from the
    // listener, so tests fail on them.
    this.stalls = 0;
    this.recoveries = 0;
    this.settling = true; // a load or seek is under way: waiting is expected
    this.inStall = false;

    const a = audio;
    a.addEventListener('timeupdate', () => this.tick());
    a.addEventListener('playing', () => { this.error = ''; this.settling = false; this.inStall = false; this.changed(); });
    for (const ev of ['emptied', 'seeking']) a.addEventListener(ev, () => { this.settling = true; });
    a.addEventListener('waiting', () => {
      if (this.settling || a.paused) return;
      // With media buffered ahead, the decoder is catching up (Chromium
      // does under load): not a stall.
      const ahead = bufferedAhead(a);
      if (ahead < 1) this.stall(`waiting, ${ahead.toFixed(2)}s buffered ahead`);
      else this.trace(`waiting with ${ahead.toFixed(2)}s buffered ahead (not a stall)`);
    });
    a.addEventListener('pause', () => { this.trace(`pause at ${a.currentTime.toFixed(2)}`); this.changed(); });
    for (const ev of ['play', 'playing', 'waiting', 'emptied', 'abort', 'stalled', 'canplay']) a.addEventListener(ev, () => this.trace(ev));
    a.addEventListener('volumechange', () => { localStorage.setItem('riff.volume', String(a.volume)); this.changed(); });
    a.addEventListener('durationchange', () => this.changed());
    a.addEventListener('ended', () => { this.finish(true); this.next(); });
    a.addEventListener('error', () => {
      if (!this.hls && a.error && !this.fallBack('media error')) this.fail('This song cannot be played right now (media error).');
    });
    // Leaving the page ends the play being measured; its event is kept
    // and sent now (keepalive) or on the next visit.
    window.addEventListener('pagehide', () => { this.finish(false); this.reporter.flush({ keepalive: true }); });
    const v = parseFloat(localStorage.getItem('riff.volume'));
    if (v >= 0 && v <= 1) a.volume = v;
    this.mediaSession();
  }

  trace(what) {
    this.log.push(`${(performance.now() / 1000).toFixed(2)} ${what}`);
    if (this.log.length > 50) this.log.shift();
  }

  /** stall counts the start of a stall (once until playback resumes). */
  stall(why) {
    if (this.inStall) return;
    this.inStall = true;
    this.stalls++;
    this.trace(`stall ${this.stalls} at ${this.audio.currentTime.toFixed(2)}: ${why}`);
  }

  /** recovered counts a recovery the player starts, and says which. */
  recovered(how) {
    this.recoveries++;
    this.trace(`recovery ${this.recoveries}: ${how}`);
  }

  /**
   * fallBack retries the current song once on its fallback_urls (the same
   * token on another region's edge, see GET /songs/{id}) from where it
   * stopped. It returns false when there is no fallback left to try.
   */
  fallBack(reason) {
    const song = this.current;
    if (!song || !song.fallback_urls) return false;
    const fb = { ...song, ...song.fallback_urls, fallback_urls: null };
    this.queue[this.index] = fb;
    this.recovered(`${reason}: retrying on region ${song.fallback_urls.region || '(fallback)'}`);
    const seq = this.loadSeq;
    const at = this.audio.currentTime;
    // Deferred: this may run inside an hls.js error handler, and attach
    // destroys that hls.js instance.
    setTimeout(() => {
      if (seq !== this.loadSeq) return;
      if (at > 0) this.audio.addEventListener('loadedmetadata', () => { this.audio.currentTime = at; }, { once: true });
      if (!this.attach(fb, () => this.start(seq))) this.start(seq);
    }, 0);
    return true;
  }

  get current() { return this.queue[this.index] || null; }
  get playing() { return !this.audio.paused && !this.audio.ended; }

  changed() { this.dispatchEvent(new Event('change')); }

  fail(message) {
    this.error = message;
    this.dispatchEvent(new CustomEvent('error', { detail: message }));
    this.changed();
  }

  /** playSongs replaces the queue with songs and plays songs[start]. */
  playSongs(songs, start = 0, source = 'other') {
    this.queue = songs.map((s) => ({ ...s, source }));
    return this.load(start);
  }

  /** enqueue adds a song at the end of the queue. */
  enqueue(song, source = 'queue') {
    this.queue.push({ ...song, source });
    if (this.index < 0) return this.load(this.queue.length - 1);
    this.changed();
    return Promise.resolve();
  }

  removeAt(i) {
    if (i === this.index) return;
    this.queue.splice(i, 1);
    if (i < this.index) this.index--;
    this.changed();
  }

  /** load plays queue[i]: it asks catalogd for fresh signed URLs first. */
  async load(i) {
    if (i < 0 || i >= this.queue.length) return;
    this.finish(false);
    const seq = ++this.loadSeq;
    this.index = i;
    this.error = '';
    this.quality = '';
    this.changed();
    let song;
    try {
      song = await this.api.get(`/songs/${this.queue[i].id}`);
    } catch (err) {
      if (seq === this.loadSeq) this.fail(err.message);
      return;
    }
    if (seq !== this.loadSeq) return;
    if (!song.hls_url && !song.stream_url) {
      this.fail(this.api.loggedIn ? `“${song.title}” is not ready to play yet.` : 'Log in to play songs.');
      return;
    }
    this.queue[i] = { ...this.queue[i], ...song };
    this.play = { song_id: song.id, started_at: new Date().toISOString(), ms: 0, source: this.queue[i].source };
    this.lastTime = 0;
    this.updateMetadata();
    // hls.js starts once the playlist is parsed; other sources at once.
    if (!this.attach(song, () => this.start(seq))) this.start(seq);
  }

  /** start plays the loaded song, once more if a load interrupted it. */
  async start(seq, retried = false) {
    if (seq !== this.loadSeq) return;
    this.trace(`start ${seq}${retried ? ' (again)' : ''}`);
    try {
      await this.audio.play();
    } catch (err) {
      this.trace(`play() refused: ${err.name}`);
      if (seq !== this.loadSeq) return;
      if (err.name === 'AbortError' && !retried) {
        // A new load (the media source attaching) interrupted play():
        // try again when there is something to play.
        this.audio.addEventListener('canplay', () => { if (this.audio.paused) this.start(seq, true); }, { once: true });
        return;
      }
      // NotAllowedError: autoplay refused until the person interacts.
      this.fail(err.name === 'NotAllowedError' ? 'Press play to start.' : 'This song cannot be played right now.');
    }
  }

  /**
   * attach points the audio element at the song's media. It returns true
   * when it will call ready itself (hls.js, once the playlist is parsed).
   */
  attach(song, ready) {
    this.detach();
    const a = this.audio;
    if (song.hls_url && Hls.isSupported()) {
      const hls = new Hls({ enableWorker: false, startLevel: -1 });
      this.hls = hls;
      hls.on(Hls.Events.LEVEL_SWITCHED, (_, d) => {
        this.quality = qualityOf(hls.levels[d.level]);
        this.changed();
      });
      // Recovery: a fatal error gets one retry; an append that did not
      // grow the buffer (seen now and then in Chromium when a song's
      // MediaSource replaces the last one) resets the media source, and
      // playback resumes once there is something to play.
      let recovered = false;
      let resets = 0;
      const resume = () => a.addEventListener('canplay', () => { if (this.hls === hls && a.paused) this.start(this.loadSeq, true); }, { once: true });
      hls.on(Hls.Events.ERROR, (_, d) => {
        this.trace(`hls ${d.fatal ? 'fatal ' : ''}${d.type}/${d.details}`);
        if (!d.fatal) {
          // As for waiting: a stall is a want of data. hls.js also reports
          // one when a starved decoder stops the playhead with media
          // buffered ahead (seen on a loaded 2-core machine): not counted.
          if (d.details === Hls.ErrorDetails.BUFFER_STALLED_ERROR && !this.settling && !a.paused) {
            const ahead = bufferedAhead(a);
            if (ahead < 1) this.stall(d.details);
            else this.trace(`${d.details} with ${ahead.toFixed(2)}s buffered ahead (not a stall)`);
          }
          if ((d.details === Hls.ErrorDetails.BUFFER_APPEND_NO_PROGRESS || d.details === Hls.ErrorDetails.MEDIA_SOURCE_REQUIRES_RESET) && resets < 3) {
            resets++;
            this.recovered(`media source reset after ${d.details}`);
            hls.recoverMediaError();
            resume();
          }
          return;
        }
        if (d.type === Hls.ErrorTypes.MEDIA_ERROR && !recovered) { recovered = true; this.recovered(`media error ${d.details}`); hls.recoverMediaError(); resume(); return; }
        if (d.type === Hls.ErrorTypes.NETWORK_ERROR && !recovered) { recovered = true; this.recovered(`reload after ${d.details}`); hls.startLoad(); return; }
        if (this.fallBack(`hls ${d.details}`)) return;
        this.fail('Playback failed: the stream could not be loaded. Try again in a moment.');
        this.detach();
      });
      hls.on(Hls.Events.STALL_RESOLVED, () => { this.inStall = false; });
      // Attach first, load once attached (hls.js's recommended order).
      hls.once(Hls.Events.MANIFEST_PARSED, ready);
      hls.once(Hls.Events.MEDIA_ATTACHED, () => hls.loadSource(song.hls_url));
      hls.attachMedia(a);
      return true;
    } else if (song.hls_url && a.canPlayType('application/vnd.apple.mpegurl')) {
      a.src = song.hls_url;
      this.quality = 'HLS (adaptive)';
    } else {
      a.src = song.stream_url;
      this.quality = 'Ogg Vorbis';
    }
    return false;
  }

  detach() {
    if (this.hls) { this.hls.destroy(); this.hls = null; }
    this.audio.removeAttribute('src');
  }

  /** tick counts played time from timeupdate steps (seeks do not count). */
  tick() {
    const t = this.audio.currentTime;
    const d = t - this.lastTime;
    if (this.play && d > 0 && d < 2 && !this.audio.seeking) this.play.ms += d * 1000;
    this.lastTime = t;
    if ('mediaSession' in navigator && Number.isFinite(this.audio.duration) && this.audio.duration > 0) {
      try { navigator.mediaSession.setPositionState({ duration: this.audio.duration, position: Math.min(t, this.audio.duration), playbackRate: this.audio.playbackRate }); } catch { /* unsupported */ }
    }
    this.changed();
  }

  /** finish reports the play being measured, if any time was played. */
  finish(completed) {
    const p = this.play;
    this.play = null;
    if (!p || p.ms < 1000 || !this.api.loggedIn) return;
    this.reporter.add({ song_id: p.song_id, started_at: p.started_at, ms_played: Math.round(p.ms), source: p.source, completed });
  }

  toggle() {
    if (!this.current) return this.queue.length ? this.load(0) : undefined;
    if (this.audio.paused) return this.audio.play().catch(() => {});
    this.audio.pause();
  }

  next() { if (this.index + 1 < this.queue.length) return this.load(this.index + 1); this.finish(true); this.changed(); }

  prev() {
    if (this.audio.currentTime > 3 || this.index <= 0) { this.seek(0); return; }
    return this.load(this.index - 1);
  }

  seek(t) {
    if (!Number.isFinite(t)) return;
    this.audio.currentTime = Math.max(0, t);
    this.lastTime = this.audio.currentTime;
  }

  setVolume(v) { this.audio.volume = Math.min(1, Math.max(0, v)); }

  updateMetadata() {
    if (!('mediaSession' in navigator) || !this.current) return;
    const s = this.current;
    navigator.mediaSession.metadata = new MediaMetadata({
      title: s.title,
      artist: (s.artists || []).map((a) => a.name).join(', '),
      album: s.album ? s.album.title : '',
      artwork: s.album && s.album.cover_sizes ? Object.entries(s.album.cover_sizes).map(([n, src]) => ({ src, sizes: `${n}x${n}`, type: 'image/jpeg' })) : [],
    });
  }

  mediaSession() {
    if (!('mediaSession' in navigator)) return;
    const ms = navigator.mediaSession;
    const on = (action, fn) => { try { ms.setActionHandler(action, fn); } catch { /* action not supported */ } };
    on('play', () => this.toggle());
    on('pause', () => this.audio.pause());
    on('previoustrack', () => this.prev());
    on('nexttrack', () => this.next());
    on('seekbackward', (d) => this.seek(this.audio.currentTime - (d.seekOffset || 10)));
    on('seekforward', (d) => this.seek(this.audio.currentTime + (d.seekOffset || 10)));
    on('seekto', (d) => this.seek(d.seekTime));
    on('stop', () => { this.audio.pause(); this.seek(0); });
    this.addEventListener('change', () => { ms.playbackState = this.current ? (this.playing ? 'playing' : 'paused') : 'none'; });
  }
}

/** bufferedAhead is how many seconds a can play from currentTime on. */
function bufferedAhead(a) {
  const t = a.currentTime;
  for (let i = 0; i < a.buffered.length; i++) {
    if (a.buffered.start(i) <= t + 0.1 && t < a.buffered.end(i)) return a.buffered.end(i) - t;
  }
  return 0;
}

/** ladder is the packager's AAC bitrates in kbps. */
const ladder = [64, 128, 320];

/**
 * qualityOf names an HLS level as its ladder rung: BANDWIDTH is the peak
 * (container overhead included), so the nearest rung is the honest name.
 */
function qualityOf(level) {
  if (!level) return '';
  // The packager names renditions aac_{kbps}.m3u8.
  const named = /aac_(\d+)\.m3u8/.exec(String(level.url || ''));
  if (named) return `AAC ${named[1]} kbps`;
  const avg = level.attrs && Number(level.attrs['AVERAGE-BANDWIDTH']);
  const kbps = (avg || level.bitrate) / 1000;
  const rung = ladder.reduce((best, r) => (Math.abs(r - kbps) < Math.abs(best - kbps) ? r : best));
  return `AAC ${Math.abs(rung - kbps) / rung < 0.25 ? rung : Math.round(kbps)} kbps`;
}
