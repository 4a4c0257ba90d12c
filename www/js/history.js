// Earlier versions of the settings, newest first, with restore and the last
// version known to work (the newest that passed a check or a test email).

import { api, ApiError } from './api.js';
import { $, h, clear, formatDate } from './dom.js';

let page;
let loading = null;

export function initHistory(p) {
  page = p;
  const previous = page.onSaved;
  page.onSaved = () => { previous && previous(); refresh(); };
}

async function refresh() {
  if (loading) return loading;
  loading = (async () => {
    const body = $('history-body');
    try {
      const { data } = await api.history();
      if (data.last_known_good_version !== undefined) {
        page.state.lastKnownGood = data.last_known_good_version;
        page.rerender();
      }
      render(body, Array.isArray(data.versions) ? data.versions : [], data.last_known_good_version);
    } catch (e) {
      clear(body);
      body.append(h('p', { class: 'muted' }, e instanceof ApiError && e.notAvailable
        ? 'The history of changes is not available on this server yet.'
        : `The history could not be loaded: ${e.message}`));
    } finally {
      loading = null;
    }
  })();
  return loading;
}

function render(body, versions, lkg) {
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
    const changed = Array.isArray(v.changed_fields) && v.changed_fields.length
      ? v.changed_fields.map((f) => page.label(f)).join(', ') : null;
    const badges = h('span', { class: 'badges' },
      isCurrent ? h('span', { class: 'pill' }, 'current') : null,
      isGood ? h('span', { class: 'pill good' }, 'last known good') : null,
      v.tested_ok === true ? h('span', { class: 'pill good' }, '✓ test email sent') : null);
    const item = h('li', { class: 'history-item' + (isCurrent ? ' current' : '') },
      h('div', { class: 'history-head' },
        h('strong', {}, `Version ${v.version}`), ' ', badges),
      h('p', { class: 'history-meta' },
        `${formatDate(v.saved_at)}${v.saved_by ? ` by ${v.saved_by}` : ''}`,
        v.restored_from !== null && v.restored_from !== undefined ? ` · restored from version ${v.restored_from}` : '',
        // Cleared since: a restore keeps the current password (the answer says so too).
        v.password_removed === true ? ' · password removed from history' : ''),
      changed ? h('p', { class: 'history-changes' }, `Changed: ${changed}`) : null,
      isCurrent ? null : h('button', {
        type: 'button', class: 'secondary small', 'data-restore': v.version,
        'aria-label': `Restore version ${v.version}`, onclick: () => restore(v.version),
      }, 'Restore'));
    list.append(item);
  }
  body.append(list);
}

async function restore(version) {
  const warning = page.isDirty() ? ' Your unsaved changes in the form will be lost.' : '';
  if (!window.confirm(`Restore version ${version}? This saves its settings as a new version.${warning}`)) return;
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
