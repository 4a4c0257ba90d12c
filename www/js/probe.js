// "Check connection" and "Send test email": one attempt at a time, with elapsed
// seconds and Cancel, and an answer that reads as an explanation — the hint
// first, then the facts, the certificate, and the transcript folded below.

import { api, ApiError, NetworkError } from './api.js';
import { $, h, clear, describedBy, formatDate } from './dom.js';
import { checkAddress } from './schema.js';
import { initDomainCheck, renderDomainCheck } from './domaincheck.js';

const STAGES = {
  dns: 'looking up the server’s address', connect: 'connecting', tls: 'TLS handshake',
  greeting: 'waiting for the server’s greeting', ehlo: 'introducing ourselves (EHLO)',
  starttls: 'switching to encryption (STARTTLS)', auth: 'signing in', mail: 'naming the sender (MAIL FROM)',
  rcpt: 'naming the recipient (RCPT TO)', data: 'sending the message (DATA)', quit: 'closing (QUIT)',
  oauth: 'signing in with OAuth (getting a token from the provider)',
};
const KINDS = {
  timeout: 'no answer in time', refused: 'connection refused', tls_verify: 'certificate not trusted',
  tls_handshake: 'encryption could not be negotiated', auth_rejected: 'sign-in rejected',
  mechanism_unsupported: 'sign-in method not offered', rejected_permanent: 'rejected (permanent)',
  rejected_temporary: 'rejected for now (temporary)', protocol: 'unexpected answer',
  invalid_input: 'refused before anything was sent',
};
const ADDRESS_KEY = 'emailsetup.testAddress';

let page;
let running = null; // { controller, timer, started }
let cooldown = null; // interval while the server's rate limit says wait

export function initProbe(p) {
  page = p;
  $('check-button').addEventListener('click', () => run('check'));
  $('test-form').addEventListener('submit', (e) => { e.preventDefault(); run('test'); });
  $('probe-cancel').addEventListener('click', () => running && running.controller.abort());
  $('test_address').addEventListener('input', () => addressError(null));
  try { $('test_address').value = localStorage.getItem(ADDRESS_KEY) || ''; } catch { /* storage off */ }
  initDomainCheck();
  const previous = page.onChange;
  page.onChange = () => { previous && previous(); $('probe-unsaved').hidden = !page.isDirty(); };
}

function addressError(text) {
  const input = $('test_address');
  let p = $('test_address-error');
  if (text) {
    if (!p) { p = h('p', { id: 'test_address-error', class: 'field-error' }); $('test_address-help').before(p); }
    p.textContent = text;
    input.setAttribute('aria-invalid', 'true');
  } else {
    if (p) p.remove();
    input.removeAttribute('aria-invalid');
  }
  describedBy(input, 'test_address-error', Boolean(text));
  input.closest('.field').classList.toggle('has-error', Boolean(text));
}

async function run(kind) {
  if (running || cooldown) return;
  const address = $('test_address').value.trim();
  if (kind === 'test') {
    const problem = checkAddress(address);
    if (problem) {
      addressError(address === '' ? 'Enter the address the test email should go to.' : problem);
      $('test_address').focus();
      return;
    }
    addressError(null);
    try { localStorage.setItem(ADDRESS_KEY, address); } catch { /* storage off */ }
  }
  const result = $('probe-result');
  clear(result);
  const controller = new AbortController();
  const started = Date.now();
  const label = kind === 'check' ? 'Checking the connection' : `Sending a test email to ${address}`;
  const text = $('probe-progress-text');
  const stepLine = stepElement();
  let step = null; // the step the server reported last: { label, limit, since }
  const tick = () => {
    text.textContent = `${label}… ${Math.floor((Date.now() - started) / 1000)} s`;
    if (step) stepLine.textContent = `${cap(step.label)}: ${Math.floor((Date.now() - step.since) / 1000)} s so far, waiting up to ${seconds(step.limit)}`;
    stepLine.hidden = !step;
  };
  const onStep = (s) => {
    step = { label: s.label || STAGES[s.step] || s.step, limit: s.limit_seconds, since: Date.now() };
    stepLine.dataset.step = s.step;
    tick();
  };
  tick();
  running = { controller, timer: setInterval(tick, 1000), started };
  $('probe-progress').hidden = false;
  $('check-button').disabled = true;
  $('test-button').disabled = true;
  $('probe-cancel').focus();
  try {
    const { data } = kind === 'check' ? await api.check(controller.signal, onStep) : await api.test(address, controller.signal, onStep);
    renderSuccess(result, kind, address, data);
  } catch (e) {
    renderFailure(result, kind, e);
  } finally {
    clearInterval(running.timer);
    running = null;
    $('probe-progress').hidden = true;
    if (!cooldown) {
      $('check-button').disabled = false;
      $('test-button').disabled = false;
    }
    const heading = result.querySelector('h3');
    if (heading) heading.focus();
  }
  if (page.onSaved) page.onSaved(); // tested_ok and last known good may have changed
}

/** The line under the progress that names the step and its limit (made once). */
function stepElement() {
  let p = $('probe-step');
  if (!p) {
    p = h('p', { id: 'probe-step', class: 'probe-step' });
    $('probe-progress-text').after(p);
  }
  p.textContent = '';
  p.hidden = true;
  delete p.dataset.step;
  return p;
}

/** "30 s", "2.5 s", "2 min 50 s". */
function seconds(n) {
  if (typeof n !== 'number' || !isFinite(n)) return 'the limit';
  if (n >= 120) return `${Math.floor(n / 60)} min${Math.round(n % 60) ? ` ${Math.round(n % 60)} s` : ''}`;
  return `${n >= 10 ? Math.round(n) : Math.round(n * 10) / 10} s`;
}

function renderSuccess(box, kind, address, data) {
  const version = data.settings_version ? ` (settings version ${data.settings_version})` : '';
  box.append(h('div', { class: 'result ok' },
    h('h3', { tabindex: '-1' }, kind === 'check' ? '✓ The connection works' : '✓ The test email was accepted'),
    h('p', {}, kind === 'check'
      ? `${checkSummary()}${version}.`
      : `The server accepted the message for ${address}${version}. It should arrive within a minute — look in the spam folder too.`),
    serverFacts(data.server),
    timings(data.timings_ms),
    certificate(data.certificate, false),
    transcript(data.transcript)));
  box.append(renderDomainCheck(data.domain_check) || '');
}

function checkSummary() {
  const saved = page.state.saved || {};
  const secured = saved.smtp_connection_type === 'None' ? 'the connection was set up' : 'the connection was encrypted as configured';
  return saved.smtp_authentication_type && saved.smtp_authentication_type !== 'None'
    ? `The server answered, ${secured}, and signing in succeeded`
    : `The server answered and ${secured} (no sign-in is configured)`;
}

function renderFailure(box, kind, e) {
  const what = kind === 'check' ? 'The connection check' : 'The test email';
  if (e instanceof NetworkError) {
    box.append(h('div', { class: 'result ' + (e.aborted ? 'neutral' : 'bad') },
      h('h3', { tabindex: '-1' }, e.aborted ? `${what} was cancelled` : `${what} got no answer`),
      h('p', {}, e.aborted ? 'This page stopped waiting. The server may still finish its attempt.' : e.message)));
    return;
  }
  if (!(e instanceof ApiError)) {
    box.append(h('div', { class: 'result bad' }, h('h3', { tabindex: '-1' }, `${what} failed`), h('p', {}, String(e))));
    return;
  }
  if (e.notAvailable) {
    box.append(h('div', { class: 'result neutral' }, h('h3', { tabindex: '-1' }, `${kind === 'check' ? 'Connection checks are' : 'Test emails are'} not available yet`),
      h('p', {}, 'This server does not offer it in its current version. The settings can still be saved.')));
    return;
  }
  if (e.status === 400 && e.errors.address) {
    addressError(cap(e.errors.address));
    $('test_address').focus();
    return;
  }
  if (e.status === 429) {
    const wait = e.retryAfter || 30;
    const countdown = h('p', { class: 'countdown' });
    box.append(h('div', { class: 'result neutral rate-limited' }, h('h3', { tabindex: '-1' }, 'Please wait a moment'),
      h('p', {}, cap(Object.values(e.errors)[0] || 'Too many attempts.')), countdown));
    startCooldown(wait, countdown);
    return;
  }
  const d = e.body && e.body.diagnosis;
  const hint = (d && d.hint) || e.errors.smtp || Object.values(e.errors)[0] || e.message;
  const facts = [];
  if (d) {
    // Plain words only: the API's codes (connect, tls_handshake) are for programs.
    if (d.stage) facts.push(['Where', STAGES[d.stage] || d.stage]);
    if (d.kind) facts.push(['What', KINDS[d.kind] || d.kind]);
    // For the token side the code is the provider's error (invalid_grant, AADSTS…), not an SMTP reply.
    if (d.code !== null && d.code !== undefined) facts.push([d.stage === 'oauth' ? 'Provider error' : 'Reply code', String(d.code)]);
    if (d.enhanced_code) facts.push(['Enhanced status', d.enhanced_code]);
    const reply = d.server_reply || d.reply_text; // the contract's name, and the backend's
    if (reply) facts.push(['Server said', reply]);
  }
  // A token the provider no longer honours: the way out is one click away.
  const signIn = d && d.stage === 'oauth' && page.canSignIn && page.canSignIn()
    ? h('button', { type: 'button', class: 'secondary small', id: 'probe-sign-in', onclick: () => page.focusOAuthSignIn() }, 'Go to “Sign in”')
    : null;
  box.append(h('div', { class: 'result bad' },
    h('h3', { tabindex: '-1' }, `✗ ${what} failed`),
    h('p', { class: 'hint' }, cap(hint)),
    signIn,
    d ? suggestion(d.suggestion) : null,
    facts.length ? h('dl', { class: 'facts' }, facts.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) : null,
    d ? certificate(d.certificate, true) : null,
    d ? timings(d.timings_ms) : null,
    d ? transcript(d.transcript) : null));
}

/** A port and connection security the server tried after the failure and found
 * working: one click fills them in; nothing is saved until the user saves. */
function suggestion(s) {
  if (!s || typeof s !== 'object' || !s.port || !s.smtp_connection_type) return null;
  return h('div', { class: 'suggestion', id: 'probe-suggestion' },
    h('p', {}, `Tried just now, without signing in: ${s.verified || `port ${s.port} answers`}.`),
    h('button', { type: 'button', class: 'secondary small', id: 'use-suggestion',
      onclick: () => page.applySuggestion(s) }, 'Use these settings'),
    h('p', { class: 'help' }, `Fills in Port ${s.port} and Connection security ${s.connection_security || s.smtp_connection_type}. Nothing is saved until you press Save.`));
}

/** Keeps both buttons off until the server's Retry-After has passed, counting down. */
function startCooldown(seconds, line) {
  const until = Date.now() + seconds * 1000;
  const buttons = [$('check-button'), $('test-button')];
  const tick = () => {
    const left = Math.ceil((until - Date.now()) / 1000);
    if (left <= 0) {
      clearInterval(cooldown);
      cooldown = null;
      buttons.forEach((b) => { b.disabled = false; });
      line.textContent = 'You can try again now.';
      return;
    }
    buttons.forEach((b) => { b.disabled = true; });
    line.textContent = `You can try again in ${left} s.`;
  };
  cooldown = setInterval(tick, 1000);
  tick();
}

function cap(m) { return typeof m === 'string' && m ? m[0].toUpperCase() + m.slice(1) : String(m); }

/** What a successful run learnt about the server. */
function serverFacts(server) {
  if (!server || typeof server !== 'object') return null;
  const rows = [
    ['Server', server.greeting],
    ['Encryption', server.tls_version ? [server.tls_version, server.cipher].filter(Boolean).join(', ') : 'none'],
    ['Signed in with', server.auth_mechanism],
    ['Offers', Array.isArray(server.extensions) && server.extensions.length ? server.extensions.join(', ') : null],
  ].filter(([, v]) => v);
  return rows.length ? h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k), h('dd', {}, v)])) : null;
}

function timings(t) {
  if (!t || typeof t !== 'object' || !Object.keys(t).length) return null;
  const order = Object.keys(STAGES);
  const rank = (k) => (order.includes(k) ? order.indexOf(k) : order.length);
  const entries = Object.entries(t).sort(([a], [b]) => rank(a) - rank(b));
  return h('p', { class: 'timings' }, 'Timings: ', entries.map(([k, v]) => `${k} ${v} ms`).join(' · '));
}

function certificate(c, offerTrust) {
  if (!c || typeof c !== 'object') return null;
  // The contract says sha256/names; the backend says sha256_fingerprint/subject_alt_names.
  const sha256 = c.sha256 || c.sha256_fingerprint || null;
  const names = (Array.isArray(c.names) ? c.names : Array.isArray(c.subject_alt_names) ? c.subject_alt_names : [])
    .map((n) => String(n).replace(/^DNS:/, ''));
  const rows = [
    ['Subject', c.subject], ['Issuer', c.issuer],
    ['Valid', c.not_before || c.not_after ? `${formatDate(c.not_before)} – ${formatDate(c.not_after)}` : null],
    ['Names', names.length ? names.join(', ') : null],
    ['SHA-256', sha256 ? fingerprintText(sha256) : null],
  ].filter(([, v]) => v);
  const box = h('div', { class: 'certificate' },
    h('h4', {}, 'The server’s certificate'),
    h('dl', { class: 'facts' }, rows.map(([k, v]) => [h('dt', {}, k),
      k === 'SHA-256' ? h('dd', { class: 'mono fingerprint' }, v.split(':').map((pair, i) => (i ? [':', h('wbr')] : []).concat(pair)))
        : h('dd', {}, v)])));
  if (sha256 && offerTrust !== null) {
    box.append(h('p', { class: 'help' }, offerTrust
      ? 'If you know this is your server’s certificate (for example a self-signed one), trust exactly this certificate:'
      : 'To accept only this certificate from now on:'));
    box.append(h('button', { type: 'button', class: 'secondary small trust-button', onclick: () => page.trustCertificate(sha256) }, 'Trust this certificate'));
  }
  return box;
}

/** "ab:cd:…", lower case: how fingerprints are usually compared by eye. */
function fingerprintText(sha256) {
  return sha256.replace(/:/g, '').toLowerCase().replace(/(..)(?=.)/g, '$1:');
}

function transcript(lines) {
  if (!Array.isArray(lines) || !lines.length) return null;
  return h('details', { class: 'transcript' },
    h('summary', {}, `Conversation with the server (${lines.length} ${lines.length === 1 ? 'line' : 'lines'})`),
    h('pre', {}, lines.join('\n')));
}
