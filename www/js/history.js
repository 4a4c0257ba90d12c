// Earlier versions of the settings, newest first, with restore and the last
// version known to work (the newest that passed a check or a test email).

import { api, ApiError } from './api.js';
import { $, h, clear, formatDate } from './dom.js';

let page;
let loading = null;
let again = false; // a refresh asked for while one was loading: its answer may predate a save

export function initHistory(p) {
  page = p;
  const previous = page.onSaved;
  page.onSaved = () => { previous && previous(); refresh(); };
}

async function refresh() {
  if (loading) { again = true; return loading; }
  loading = (async () => {
    const body = $('history-body');
    try {
      const { data } = await api.history();
      if (data.last_known_good_version !== undefined) {
        page.state.lastKnownGood = data.last_known_good_version;
        page.rerender();
      }
      render(body, Array.isArray(data.versions) ? data.versions : [], data.last_known_good_version,
        Array.isArray(data.events) ? data.events : []);
    } catch (e) {
      clear(body);
      body.append(h('p', { class: 'muted' }, e instanceof ApiError && e.notAvailable
        ? 'The history of changes is not available on this server yet.'
        : `The history could not be loaded: ${e.message}`));
    } finally {
      loading = null;
      if (again) { again = false; refresh(); }
    }
  })();
  return loading;
}

function render(body, versions, lkg, events) {
  clear(body);
  const lkgLine = $('history-lkg');
  lkgLine.textContent = lkg !== null && lkg !== undefined && lkg !== ''
    ? `Last known good: version ${lkg} — the newest whose test email went through.`
    : 'No version has sent a test email successfully yet.';
  if (!versions.length) {
    body.append(h('p', { class: 'muted' }, 'Nothing saved yet.'));
    return;
  }
  const current = String(page.state.version);
  const list = h('ol', { class: 'history-list' });
  for (const v of [...versions].sort((a, b) => Number(b.version) - Number(a.version))) {
    const isCurrent = String(v.version) === current;
    const isGood = lkg !== null && lkg !== undefined && String(v.version) === String(lkg);
    const badges = h('span', { class: 'badges' },
      isCurrent ? h('span', { class: 'pill' }, 'current') : null,
      isGood ? h('span', { class: 'pill good' }, 'last known good') : null,
      v.tested_ok === true ? h('span', { class: 'pill good' }, '✓ test email sent') : null);
    const tried = events.filter((e) => String(e.settings_version) === String(v.version));
    const item = h('li', { class: 'history-item' + (isCurrent ? ' current' : ''), 'data-version': v.version },
      h('div', { class: 'history-head' },
        h('strong', {}, `Version ${v.version}`), ' ', badges),
      h('p', { class: 'history-meta' },
        `${formatDate(v.saved_at)}${v.saved_by ? ` by ${v.saved_by}` : ''}`,
        v.restored_from !== null && v.restored_from !== undefined ? ` · restored from version ${v.restored_from}` : '',
        // Cleared since: a restore keeps the current password (the answer says so too).
        v.password_removed === true ? ' · password removed from history' : ''),
      changeList(v),
      tried.length ? h('ul', { class: 'history-events', 'aria-label': `Tests and checks of version ${v.version}` },
        tried.map(eventItem)) : null,
      isCurrent ? null : h('button', {
        type: 'button', class: 'secondary small', 'data-restore': v.version,
        'aria-label': `Restore version ${v.version}`, onclick: (e) => confirmRestore(v, e.currentTarget),
      }, 'Restore'));
    list.append(item);
  }
  body.append(list);
}

/** Old → new per field; a secret only as "changed". Older servers send names only. */
function changeList(v) {
  if (!Array.isArray(v.changes)) {
    const names = Array.isArray(v.changed_fields) && v.changed_fields.length ? v.changed_fields.map((f) => page.label(f)).join(', ') : null;
    return names ? h('p', { class: 'history-changes' }, `Changed: ${names}`) : null;
  }
  if (!v.changes.length) return h('p', { class: 'history-changes' }, 'No field changed.');
  return h('ul', { class: 'history-changes' }, v.changes.map((c) => changeItem(c, 'was', 'now')));
}

function changeItem(c, before, after) {
  const label = c.label || page.label(c.field);
  if (c.changed === true) return h('li', { 'data-field': c.field }, h('span', { class: 'change-field' }, label), ': changed (not shown)');
  return h('li', { 'data-field': c.field },
    h('span', { class: 'change-field' }, label), ': ',
    h('span', { class: 'change-old', title: before }, shown(c.old, c.field)), ' → ',
    h('span', { class: 'change-new', title: after }, shown(c.new, c.field)));
}

/** A value as a person reads it: empty and unknown said in words, a PEM summarised. */
function shown(value, field) {
  if (value === null || value === undefined) return field === 'smtp_host' || field === 'from_address' ? '(not set)' : '(no longer kept)';
  if (value === '') return '(empty)';
  if (/-----BEGIN /.test(value)) {
    const n = (value.match(/-----BEGIN /g) || []).length;
    return `${n} PEM ${n === 1 ? 'certificate' : 'certificates'}`;
  }
  return value.length > 120 ? value.slice(0, 117) + '…' : value;
}

const EVENT_KINDS = { test_email: 'Test email', check: 'Connection check' };

/** One test or check of a version: ✓ or ✗, when, who, and for a failure its hint. */
function eventItem(e) {
  const what = EVENT_KINDS[e.kind] || e.kind;
  const ok = e.outcome === 'success';
  const verb = ok ? 'succeeded' : e.outcome === 'abandoned' ? 'was cancelled' : 'failed';
  return h('li', { class: 'history-event ' + (ok ? 'ok' : 'bad') },
    h('span', { class: 'event-mark', 'aria-hidden': 'true' }, ok ? '✓ ' : '✗ '),
    `${what}${e.to ? ` to ${e.to}` : ''} ${verb} · ${formatDate(e.at)}${e.actor ? ` by ${e.actor}` : ''}`,
    !ok && e.hint ? h('span', { class: 'event-hint' }, `${e.stage ? `At ${e.stage}: ` : ''}${e.hint}`) : null);
}

let dialog = null;

/** The page's own confirmation: what the restore changes against the current
 * settings, Cancel first in focus; Esc and Cancel close it and focus returns. */
function confirmRestore(v, opener) {
  if (!dialog) {
    dialog = h('dialog', { id: 'restore-dialog', class: 'dialog', 'aria-labelledby': 'restore-dialog-title' });
    document.body.append(dialog);
    dialog.addEventListener('close', () => { if (dialog.opener && dialog.opener.isConnected) dialog.opener.focus(); });
  }
  clear(dialog);
  dialog.opener = opener;
  const diff = Array.isArray(v.restore_changes) ? v.restore_changes : null;
  const cancel = h('button', { type: 'button', class: 'secondary', id: 'restore-cancel', onclick: () => dialog.close() }, 'Cancel');
  const confirm = h('button', { type: 'button', class: 'primary', id: 'restore-confirm',
    onclick: () => { dialog.close(); restore(v.version); } }, `Restore version ${v.version}`);
  dialog.append(...[
    h('h2', { id: 'restore-dialog-title' }, `Restore version ${v.version}?`),
    h('p', {}, 'This saves its settings as a new version and uses them from then on.'),
    diff === null ? null : diff.length
      ? [h('p', { class: 'dialog-lead' }, 'What changes against the current settings:'),
        h('ul', { class: 'history-changes restore-diff' }, diff.map((c) => changeItem(c, 'current', `version ${v.version}`)))]
      : h('p', { class: 'dialog-lead' }, 'Its settings are the same as the current ones.'),
    page.isDirty() ? h('p', { class: 'dialog-warning' }, 'Your unsaved changes in the form will be lost.') : null,
    h('div', { class: 'dialog-buttons' }, cancel, confirm)].flat().filter(Boolean));
  dialog.showModal();
  cancel.focus();
}

async function restore(version) {
  try {
    const { data, etag } = await api.restore(version, page.state.etag);
    page.applySaveAnswer(data, etag);
    page.showBanner(null);
    refresh();
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) {
      page.showBanner('Someone else saved the settings in the meantime, so nothing was restored. Reload to see their version, then try again.', 'error',
        [h('button', { type: 'button', class: 'primary small', onclick: () => page.reload() }, 'Reload the saved settings')]);
    } else {
      page.showBanner(`Version ${version} was not restored: ${e.message}`);
    }
  }
}
