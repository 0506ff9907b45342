// api.js: the catalogd API client. It keeps the session (access and
// refresh tokens) in localStorage, refreshes the access token before it
// expires or when the server says it has, and turns problem+json answers
// into ApiErrors whose message is the server's human-readable detail.

const SESSION_KEY = 'riff.session';

/** ApiError is a failed API call; message is fit to show to a person. */
export class ApiError extends Error {
  constructor(status, problem = {}) {
    super(problem.detail || problem.title || messageForStatus(status));
    this.name = 'ApiError';
    this.status = status;
    this.code = problem.code || '';
    this.field = problem.field || '';
  }
}

function messageForStatus(status) {
  switch (true) {
    case status === 0: return 'Cannot reach Riff. Check your connection and try again.';
    case status === 401: return 'Please log in again.';
    case status === 403: return 'You are not allowed to do that.';
    case status === 404: return 'Not found.';
    case status === 409: return 'That conflicts with a change made elsewhere; reload and try again.';
    case status === 413: return 'That file is too large.';
    case status === 429: return 'Too many attempts; wait a moment and try again.';
    case status >= 500: return 'Riff had a problem on its side; try again in a moment.';
    default: return `The request failed (HTTP ${status}).`;
  }
}

async function problemOf(res) {
  const type = res.headers.get('Content-Type') || '';
  if (type.includes('json')) {
    try { return await res.json(); } catch { /* not JSON after all */ }
  }
  return {};
}

/** Api talks to catalogd on the page's own origin. */
export class Api {
  constructor(storage = window.localStorage) {
    this.storage = storage;
    this.session = this.load();
    this.refreshing = null;
    this.listeners = new Set();
    // Another tab logged in, out, or rotated the refresh token.
    window.addEventListener('storage', (e) => {
      if (e.key === SESSION_KEY) { this.session = this.load(); this.emit(); }
    });
  }

  load() {
    try { return JSON.parse(this.storage.getItem(SESSION_KEY) || 'null'); } catch { return null; }
  }

  get user() { return this.session ? this.session.user : null; }
  get loggedIn() { return this.session !== null; }

  onChange(fn) { this.listeners.add(fn); }
  emit() { for (const fn of this.listeners) fn(this.user); }

  setTokens(t) {
    this.session = {
      access: t.access_token,
      accessExpires: Date.parse(t.expires_at) || Date.now() + t.expires_in * 1000,
      refresh: t.refresh_token,
      user: t.user,
    };
    this.save();
  }

  setUser(user) {
    if (!this.session) return;
    this.session.user = user;
    this.save();
  }

  save() {
    if (this.session) this.storage.setItem(SESSION_KEY, JSON.stringify(this.session));
    else this.storage.removeItem(SESSION_KEY);
    this.emit();
  }

  clear() { this.session = null; this.save(); }

  async register(fields) { this.setTokens(await this.request('POST', '/auth/register', { body: fields, auth: false })); }
  async login(email, password) { this.setTokens(await this.request('POST', '/auth/login', { body: { email, password }, auth: false })); }

  async logout() {
    const s = this.session;
    this.clear();
    if (s) {
      try { await this.request('POST', '/auth/logout', { body: { refresh_token: s.refresh }, auth: false }); } catch { /* the session is gone locally either way */ }
    }
  }

  /** refresh trades the refresh token for new tokens, once at a time. */
  refresh() {
    if (!this.refreshing) {
      const s = this.session;
      this.refreshing = (async () => {
        if (!s) throw new ApiError(401, { detail: 'Please log in.' });
        try {
          this.setTokens(await this.request('POST', '/auth/refresh', { body: { refresh_token: s.refresh }, auth: false }));
        } catch (err) {
          if (err.status === 401) {
            // Another tab may have rotated the token a moment ago.
            const now = this.load();
            if (now && now.refresh !== s.refresh) { this.session = now; return; }
            this.clear();
            throw new ApiError(401, { detail: 'Your session has ended; please log in again.', code: err.code });
          }
          throw err;
        }
      })().finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  /** accessToken returns a fresh access token, or '' when logged out. */
  async accessToken() {
    if (!this.session) return '';
    if (this.session.accessExpires - Date.now() < 30_000) await this.refresh();
    return this.session ? this.session.access : '';
  }

  /**
   * request calls the API. opts: body (sent as JSON, or as is when
   * FormData), query (object), auth (true: send the token when logged
   * in; false: never), headers, keepalive.
   */
  async request(method, path, opts = {}) {
    const { body, query, auth = true, headers = {}, keepalive = false } = opts;
    let url = path;
    if (query) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== '') q.set(k, String(v));
      const qs = q.toString();
      if (qs) url += '?' + qs;
    }
    for (let attempt = 0; ; attempt++) {
      const h = { Accept: 'application/json, application/problem+json', ...headers };
      if (auth) {
        const token = await this.accessToken();
        if (token) h.Authorization = 'Bearer ' + token;
      }
      let payload;
      if (body instanceof FormData) payload = body;
      else if (body !== undefined) { payload = JSON.stringify(body); h['Content-Type'] = 'application/json'; }
      let res;
      try {
        res = await fetch(url, { method, headers: h, body: payload, keepalive, credentials: 'same-origin' });
      } catch {
        throw new ApiError(0);
      }
      if (res.ok) {
        if (res.status === 204) return null;
        const type = res.headers.get('Content-Type') || '';
        if (!type.includes('json')) return null;
        const data = await res.json();
        const etag = res.headers.get('ETag');
        if (etag && data && typeof data === 'object' && !Array.isArray(data)) Object.defineProperty(data, 'etag', { value: etag, enumerable: false });
        return data;
      }
      const problem = await problemOf(res);
      if (res.status === 401 && auth && this.session && attempt === 0 &&
          (problem.code === 'token_expired' || problem.code === 'invalid_token')) {
        await this.refresh();
        continue;
      }
      throw new ApiError(res.status, problem);
    }
  }

  get(path, query) { return this.request('GET', path, { query }); }
  post(path, body) { return this.request('POST', path, { body }); }
  put(path, body) { return this.request('PUT', path, { body }); }
  patch(path, body, headers) { return this.request('PATCH', path, { body, headers }); }
  del(path) { return this.request('DELETE', path); }

  /**
   * upload sends a multipart form with XMLHttpRequest, the one browser API
   * that reports upload progress: onProgress(sentBytes, totalBytes).
   */
  async upload(method, path, form, onProgress) {
    for (let attempt = 0; ; attempt++) {
      const token = await this.accessToken();
      const res = await new Promise((resolve) => {
        const xhr = new XMLHttpRequest();
        xhr.open(method, path);
        xhr.setRequestHeader('Accept', 'application/json, application/problem+json');
        if (token) xhr.setRequestHeader('Authorization', 'Bearer ' + token);
        xhr.upload.addEventListener('progress', (e) => { if (e.lengthComputable) onProgress(e.loaded, e.total); });
        xhr.addEventListener('load', () => resolve(xhr));
        xhr.addEventListener('error', () => resolve(null));
        xhr.addEventListener('abort', () => resolve(null));
        xhr.send(form);
      });
      if (!res) throw new ApiError(0);
      let data = {};
      try { data = JSON.parse(res.responseText || '{}'); } catch { data = {}; }
      if (res.status >= 200 && res.status < 300) return data;
      if (res.status === 401 && attempt === 0 && (data.code === 'token_expired' || data.code === 'invalid_token')) {
        await this.refresh();
        continue;
      }
      throw new ApiError(res.status, data);
    }
  }
}
