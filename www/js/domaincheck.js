// The sender domain's SPF, DKIM and DMARC (POST email_domain_check, and the
// `domain_check` of a successful test email): findings first, each with the record
// to publish, then the details folded below.

import { call, ApiError } from './api.js';
import { $, h, clear } from './dom.js';

const TOPICS = { spf: 'SPF', dkim: 'DKIM', dmarc: 'DMARC' };
const SEVERITY = { error: 'Problem', warning: 'Warning', info: 'Note' };

/** Wires the "Check my domain" button. */
export function initDomainCheck() {
  const button = $('domain-check-button');
  if (!button) return;
  button.addEventListener('click', async () => {
    const box = $('domain-check-result');
    clear(box);
    button.disabled = true;
    box.append(h('p', { class: 'muted', role: 'status' }, 'Checking the sender domain’s DNS records…'));
    try {
      const { data } = await call('POST', 'email_domain_check', { body: {} });
      clear(box).append(renderDomainCheck(data));
    } catch (e) {
      const message = e instanceof ApiError ? Object.values(e.errors || {}).join(' ') || e.message : e.message;
      clear(box).append(renderDomainCheck({ error: message }));
    } finally {
      button.disabled = false;
      const heading = box.querySelector('h3');
      if (heading) heading.focus();
    }
  });
}

/** The report as an element, or null when there is none (older servers). */
export function renderDomainCheck(dc) {
  if (!dc || typeof dc !== 'object') return null;
  if (dc.error) {
    return h('div', { class: 'result neutral domain-check', 'data-state': 'error' },
      h('h3', { tabindex: '-1' }, 'The sender domain could not be checked'),
      h('p', {}, String(dc.error)));
  }
  const findings = Array.isArray(dc.findings) ? dc.findings : [];
  const errors = findings.filter((f) => f.severity === 'error').length;
  const warnings = findings.filter((f) => f.severity === 'warning').length;
  const state = errors ? 'bad' : warnings ? 'warn' : 'ok';
  const summary = errors || warnings
    ? [errors && `${errors} ${errors === 1 ? 'problem' : 'problems'}`, warnings && `${warnings} ${warnings === 1 ? 'warning' : 'warnings'}`].filter(Boolean).join(', ')
    : 'SPF, DKIM and DMARC look right';
  return h('div', { class: `result domain-check ${state === 'ok' ? 'ok' : state === 'bad' ? 'bad' : 'warn'}`, 'data-state': state },
    h('h3', { tabindex: '-1' }, `Sender domain ${dc.domain}: ${summary}`),
    h('p', { class: 'help' }, 'Whether receivers can tell that your server may send for this domain (SPF), whether a signing key is published (DKIM), and what the domain asks receivers to do with mail that fails (DMARC).'),
    h('ul', { class: 'findings' }, findings.map(finding)),
    details(dc));
}

function finding(f) {
  return h('li', { class: `finding ${f.severity}`, 'data-topic': f.topic, 'data-severity': f.severity },
    h('p', {}, h('strong', {}, `${SEVERITY[f.severity] || f.severity} · ${TOPICS[f.topic] || f.topic}: `), f.message),
    f.record ? record(f.record) : null);
}

function record(r) {
  const value = h('code', { class: 'mono' }, r.value);
  const status = h('span', { class: 'copy-status', role: 'status' });
  return h('div', { class: 'publish' },
    h('dl', { class: 'facts' },
      h('dt', {}, 'Name'), h('dd', { class: 'mono' }, r.name),
      h('dt', {}, 'Type'), h('dd', {}, r.type),
      h('dt', {}, 'Value'), h('dd', {}, value)),
    h('button', {
      type: 'button', class: 'secondary small',
      onclick: async () => {
        try { await navigator.clipboard.writeText(r.value); status.textContent = 'Copied'; } catch { status.textContent = 'Select the value to copy it'; }
      },
    }, 'Copy value'), status);
}

function details(dc) {
  const spf = dc.spf || {}, dkim = dc.dkim || {}, dmarc = dc.dmarc || {};
  const keys = Array.isArray(dkim.keys) ? dkim.keys : [];
  return h('details', { class: 'domain-details' },
    h('summary', {}, 'Records found'),
    h('h4', {}, 'SPF'),
    spf.tree ? h('ul', { class: 'spf-tree' }, tree(spf.tree)) : null,
    h('p', { class: 'help' }, `${spf.lookups ?? 0} of ${spf.lookup_limit ?? 10} DNS lookups` +
      (Array.isArray(spf.evaluations) && spf.evaluations.length
        ? `; result for ${spf.evaluations.map((e) => `${e.address}: ${e.result}`).join(', ')}`
        : '; not evaluated for a sending address')),
    h('h4', {}, 'DKIM'),
    h('p', { class: 'help' }, keys.length
      ? keys.map((k) => `${k.selector}: ${k.revoked ? 'withdrawn' : k.problem ? k.problem : `${k.key_type}${k.bits ? ` ${k.bits} bits` : ''}`}`).join(' · ')
      : `No key at ${(dkim.selectors_tried || []).join(', ')}.`),
    dkim.note ? h('p', { class: 'help' }, dkim.note) : null,
    h('h4', {}, 'DMARC'),
    h('p', { class: 'help mono' }, dmarc.record ? `${dmarc.found_at}: ${dmarc.record}` : 'No DMARC record.'),
    dmarc.alignment ? h('p', { class: 'help' }, dmarc.alignment.explanation) : null);
}

function tree(node) {
  return h('li', {},
    h('span', { class: 'mono' }, `${node.via === 'top' ? '' : node.via + ':'}${node.domain}`),
    node.record ? [' — ', h('span', { class: 'mono' }, node.record)] : null,
    node.problem ? h('span', { class: 'field-error' }, ` (${node.problem})`) : null,
    Array.isArray(node.includes) && node.includes.length ? h('ul', {}, node.includes.map(tree)) : null);
}
