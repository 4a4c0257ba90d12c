// The email setup API (DESIGN.md "HTTP API"): one place that knows the envelope,
// the CSRF header and how failures look, so the rest of the page handles one shape.

const BASE = 'api/setup/';

/** A failed API call, with the HTTP status and the envelope's `errors` object. */
export class ApiError extends Error {
  constructor(status, errors, body, headers) {
    super(Object.values(errors || {})[0] || `HTTP ${status}`);
    this.status = status;
    this.errors = errors || {};
    this.body = body || {};
    this.headers = headers;
  }

  get retryAfter() {
    const v = this.headers && this.headers.get('Retry-After');
    return v && /^[0-9]+$/.test(v) ? Number(v) : null;
  }

  /** True when the server does not offer this endpoint yet. */
  get notAvailable() { return this.status === 404 || this.status === 501 || this.status === 405; }
}

/** Network failure or aborted request: the envelope never arrived. */
export class NetworkError extends Error {
  constructor(cause, aborted) {
    super(aborted ? 'Cancelled.' : 'The server could not be reached. Check the network and try again.');
    this.cause = cause;
    this.aborted = aborted;
  }
}

/**
 * Calls `path` under /api/setup/. Resolves to { data, etag, headers } on success,
 * throws ApiError (with `errors`) or NetworkError otherwise.
 */
export async function call(method, path, { body, ifMatch, signal } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['X-Requested-With'] = 'EmailSetup';
    headers['Content-Type'] = 'application/json';
  }
  if (ifMatch) headers['If-Match'] = ifMatch;
  let response;
  try {
    // Resolved against the origin, not the page URL: a page opened as
    // http://user:pass@host/ would otherwise hand fetch a URL with credentials, which it refuses.
    const url = new URL(BASE + path, location.origin + location.pathname);
    url.username = '';
    url.password = '';
    response = await fetch(url.href, {
      method,
      headers,
      body: method === 'GET' ? undefined : JSON.stringify(body ?? {}),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    throw new NetworkError(e, e && e.name === 'AbortError');
  }
  let json = null;
  const text = await response.text().catch(() => '');
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (response.ok && json && json.status === 'success') {
    return { data: json.data || {}, etag: response.headers.get('ETag'), headers: response.headers };
  }
  const errors = (json && json.errors && typeof json.errors === 'object') ? json.errors
    : { server: defaultMessage(response.status) };
  throw new ApiError(response.status, errors, json, response.headers);
}

/**
 * Like `call`, for a test email or check, asking for the streamed answer
 * (`Accept: application/x-ndjson`): `onStep` hears each step line
 * ({step, label, limit_seconds, elapsed_ms}) as it comes; the last line carries the
 * answer and its HTTP status, handled exactly as `call` handles a plain answer.
 * A server that answers plain JSON (plain CGI, an answer given at once) works too.
 */
export async function stream(method, path, { body, signal, onStep } = {}) {
  let response;
  try {
    const url = new URL(BASE + path, location.origin + location.pathname);
    url.username = '';
    url.password = '';
    response = await fetch(url.href, {
      method,
      headers: { Accept: 'application/x-ndjson, application/json;q=0.9', 'X-Requested-With': 'EmailSetup', 'Content-Type': 'application/json' },
      body: JSON.stringify(body ?? {}),
      credentials: 'same-origin',
      cache: 'no-store',
      signal,
    });
  } catch (e) {
    throw new NetworkError(e, e && e.name === 'AbortError');
  }
  const type = response.headers.get('Content-Type') || '';
  if (!type.includes('application/x-ndjson') || !response.body) return settle(response.status, await response.text().catch(() => ''), response.headers);
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffered = '';
  let last = null;
  const take = (line) => {
    if (!line.trim()) return;
    let item;
    try { item = JSON.parse(line); } catch { return; }
    if (item && typeof item.http_status === 'number') last = item;
    else if (item && item.step && onStep) onStep(item);
  };
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffered.indexOf('\n')) >= 0) {
        take(buffered.slice(0, end));
        buffered = buffered.slice(end + 1);
      }
    }
    take(buffered + decoder.decode());
  } catch (e) {
    throw new NetworkError(e, (e && e.name === 'AbortError') || (signal && signal.aborted));
  }
  if (!last) throw new NetworkError(new Error('the answer ended before its last line'), false);
  const headers = new Headers();
  if (last.retry_after) headers.set('Retry-After', String(last.retry_after));
  return settle(last.http_status, JSON.stringify(last.response ?? null), headers);
}

/** The envelope of an answer: its data, or ApiError. */
function settle(status, text, headers) {
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (status >= 200 && status < 300 && json && json.status === 'success') {
    return { data: json.data || {}, etag: headers.get('ETag'), headers };
  }
  const errors = (json && json.errors && typeof json.errors === 'object') ? json.errors : { server: defaultMessage(status) };
  throw new ApiError(status, errors, json, headers);
}

function defaultMessage(status) {
  switch (status) {
    case 401: return 'You are not signed in (the web server asked for a login).';
    case 403: return 'You are not allowed to change the email settings.';
    case 404: case 501: return 'This feature is not available on this server yet.';
    case 413: return 'The request is too large.';
    case 429: return 'Too many requests; wait a moment and try again.';
    case 502: case 503: case 504: return 'The server is not answering right now; try again shortly.';
    default: return `The server answered with HTTP ${status}.`;
  }
}

export const api = {
  getSettings: () => call('GET', 'email_smtp'),
  saveSettings: (data, etag) => call('POST', 'email_smtp', { body: { data }, ifMatch: etag }),
  schema: () => call('GET', 'email_smtp/schema'),
  validateSettings: (data, signal) => call('POST', 'email_smtp/validate', { body: { data }, signal }),
  publicKey: () => call('GET', 'email_public_key'),
  test: (address, signal, onStep) => stream('POST', 'email_test/' + encodeURIComponent(address), { body: {}, signal, onStep }),
  discover: (address, signal) => call('POST', 'email_discover/' + encodeURIComponent(address), { body: {}, signal }),
  check: (signal, onStep) => stream('POST', 'email_check', { body: {}, signal, onStep }),
  history: () => call('GET', 'email_history'),
  restore: (version, etag) => call('POST', `email_history/${encodeURIComponent(version)}/restore`, { body: {}, ifMatch: etag }),
  oauthStart: () => call('POST', 'oauth/start', { body: {} }),
  oauthSignOut: () => call('POST', 'oauth/sign_out', { body: {} }),
};
