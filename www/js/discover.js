// "Find my server": asks the server to discover the SMTP settings of the From
// address's domain (SRV records, autoconfig, the MX host's provider, probes of the
// usual ports), shows each source and what was verified, and offers the proposal as
// one click that fills the form — it never saves.

import { api, ApiError, NetworkError } from './api.js';
import { $, h, clear } from './dom.js';
import { checkAddress } from './schema.js';

const SOURCES = { srv: 'SRV record', autoconfig: 'autoconfig document', mx: 'mail provider (MX)', probe: 'usual host names and ports' };
const SECURITY = { SSL: 'SSL/TLS', STARTTLS: 'STARTTLS', None: 'no encryption' };

let page;
let running = null;

export function initDiscover(p) {
  page = p;
  $('discover-button').addEventListener('click', () => (running ? cancel() : discover()));
}

function cancel() {
  running?.abort();
}

function verifiedText(candidate) {
  const v = candidate.verified;
  if (!v.greeting || v.error) return `not verified: ${v.error || 'no answer'}`;
  const parts = ['answers'];
  if (v.tls) parts.push(v.certificate_valid ? 'certificate valid' : 'certificate NOT valid for this name');
  else parts.push('without encryption');
  if (v.auth_mechanisms.length) parts.push(`sign-in: ${v.auth_mechanisms.join(', ')}`);
  return parts.join(', ');
}

async function discover() {
  const out = $('discover-result');
  const address = page.value('from_address').trim();
  const problem = address === '' ? 'Enter the From address first.' : checkAddress(address);
  clear(out);
  if (problem) {
    out.append(h('p', { class: 'discover-error', role: 'alert', text: problem }));
    return;
  }
  const controller = new AbortController();
  running = controller;
  const button = $('discover-button');
  button.textContent = 'Cancel';
  out.append(h('p', { class: 'discover-wait', text: `Looking for the mail server of ${address.split('@').pop()}… (up to 8 seconds)` }));
  try {
    const { data } = await api.discover(address, controller.signal);
    show(out, data);
  } catch (e) {
    clear(out);
    const text = e instanceof ApiError ? Object.values(e.errors || {}).join(' ') || e.message
      : e instanceof NetworkError ? e.message : (e.name === 'AbortError' ? 'Cancelled.' : String(e));
    out.append(h('p', { class: 'discover-error', role: 'alert', text }));
  } finally {
    running = null;
    button.textContent = 'Find my server';
  }
}

function show(out, data) {
  clear(out);
  const p = data.proposal;
  out.append(h('p', { class: p ? 'discover-found' : 'discover-none', role: 'status', text: data.explanation }));
  if (p) {
    const summary = `${p.smtp_host}, port ${p.smtp_port}, ${SECURITY[p.smtp_connection_type] || p.smtp_connection_type}, sign-in ${p.smtp_authentication_type}`;
    out.append(h('p', {}, h('strong', { text: summary }), ' ',
      h('button', { type: 'button', id: 'discover-apply', onclick: () => page.applyDiscovery(p) }, 'Use these settings')));
  }
  const sources = h('ul', { class: 'discover-sources' });
  for (const s of data.sources) {
    const found = s.found.length ? s.found.join('; ') : (s.error ? '' : 'nothing');
    sources.append(h('li', {}, `${SOURCES[s.source] || s.source} — ${s.tried}: ${found}${s.error ? (found ? ' — ' : '') + s.error : ''}`));
  }
  const candidates = h('ul', { class: 'discover-candidates' });
  for (const c of data.candidates) {
    candidates.append(h('li', {}, `${c.host}:${c.port} ${SECURITY[c.smtp_connection_type] || ''} (${SOURCES[c.source] || c.source}): ${verifiedText(c)}`));
  }
  out.append(h('details', {}, h('summary', { text: `What was tried (${data.elapsed_ms} ms)` }),
    h('p', { text: 'Sources' }), sources, data.candidates.length ? [h('p', { text: 'Servers probed' }), candidates] : null));
}
