// The email settings form: load, validate as you type, save with If-Match,
// undo, presets, the lifecycle of the two secrets (password, OAuth client secret).
// Test/check, history and OAuth sign-in live in their own modules and talk to
// this one through the small `page` object below.

import { api, ApiError, NetworkError } from './api.js';
import { $, h, clear, describedBy } from './dom.js';
import { loadSchema, localErrors, validateRemote, isOAuth, suggestedPort, STANDARD_PORTS } from './schema.js';
import { cryptoAvailable, importPublicKey, encryptSecret } from './secret.js';
import { initProbe } from './probe.js';
import { initHistory } from './history.js';
import { initOAuth } from './oauth.js';
import { initDiscover } from './discover.js';


/** The server's settings schema (GET …/email_smtp/schema): keys, defaults, labels, local rules. */
let schema = null;
/** Every plain (not secret) field of the form in page order: the SMTP settings, then OAuth's. */
let ALL_FIELDS = [];
let OAUTH_FIELDS = [];
let ALL_DEFAULTS = {};

/** Takes the field list and defaults from the schema: only keys this page has an input for. */
function useSchema(s) {
  schema = s;
  ALL_FIELDS = s.fields.filter((f) => !f.secret && form.elements.namedItem(f.key)).map((f) => f.key);
  OAUTH_FIELDS = ALL_FIELDS.filter((k) => k.startsWith('oauth_'));
  ALL_DEFAULTS = s.defaults();
  showSchemaTexts(s);
}

/**
 * Puts the schema's words on the page, its one source: each field's label (the page's
 * own markers after it, the required star and "(optional)", stay), help text and
 * select options (value and label, in schema order, the selection kept). Plain text
 * only: the schema carries no markup.
 */
function showSchemaTexts(s) {
  for (const f of s.fields) {
    const label = form.querySelector(`label[for="${f.key}"]`);
    if (label) {
      for (const n of [...label.childNodes]) if (n.nodeType === Node.TEXT_NODE) n.remove();
      label.prepend(f.label);
    }
    const help = $(`${f.key}-help`);
    if (help) help.textContent = f.help;
    const input = form.elements.namedItem(f.key);
    if (input && input.tagName === 'SELECT' && f.values) {
      const selected = input.value;
      input.replaceChildren(...f.values.map((v) => h('option', { value: v.value }, v.label)));
      if (f.values.some((v) => v.value === selected)) input.value = selected;
    }
  }
}

/** What the page can check alone, at once (the schema's rules; the server's live check does the rest). */
const validate = (values) => localErrors(schema, values);

/** The page's label of a field, from the schema; undefined for what is not a field. */
const labelOf = (k) => (schema && schema.field(k) ? schema.label(k) : undefined);

/**
 * The secrets: typed here, encrypted in this browser, never shown again. The form
 * keeps, replaces or removes the saved one; GET says only whether one is set.
 */
const SECRETS = {
  smtp_password: {
    setKey: 'smtp_password_set', noun: 'password',
    ids: { state: 'password-state', clear: 'password-clear', keep: 'password-keep', toggle: 'password-toggle' },
  },
  oauth_client_secret: {
    setKey: 'oauth_client_secret_set', noun: 'client secret',
    ids: { state: 'secret-state', clear: 'secret-clear', keep: 'secret-keep', toggle: 'secret-toggle' },
  },
};
const SECRET_NAMES = Object.keys(SECRETS);

/**
 * The fields a provider preset owns: it sets each of them, to its own value or the
 * default, so nothing of the previous provider stays (SendGrid's user name "apikey"
 * under Gmail). The sender address, the password and an OAuth application's ID,
 * secret and tenant belong to the user and stay; so do timeouts and extra CAs.
 */
const PRESET_OWNED = [
  'smtp_host', 'smtp_port', 'smtp_connection_type', 'smtp_authentication_type', 'smtp_username',
  'smtp_tls_verify', 'smtp_tls_pin_sha256', 'oauth_provider', 'oauth_grant', 'oauth_scope',
  'oauth_authorization_endpoint', 'oauth_token_endpoint', 'oauth_device_endpoint', 'oauth_revocation_endpoint',
];

/** An AWS region name as SES uses it in its host names: eu-west-1, us-gov-west-1, ap-southeast-2. */
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$/;

const PRESETS = {
  gmail: {
    name: 'Gmail',
    values: {
      smtp_host: 'smtp.gmail.com', smtp_port: '587', smtp_connection_type: 'STARTTLS', smtp_authentication_type: 'XOAUTH2', smtp_tls_verify: 'Full',
      oauth_provider: 'Google', oauth_grant: 'authorization_code',
    },
    note: 'Gmail: signs in with OAuth 2.0 — enter the client ID and secret of your Google Cloud OAuth client below, save, then “Sign in with Google”. (An app password with the sign-in method Automatic works too.)',
  },
  office365: {
    name: 'Office 365',
    values: {
      smtp_host: 'smtp.office365.com', smtp_port: '587', smtp_connection_type: 'STARTTLS', smtp_authentication_type: 'XOAUTH2', smtp_tls_verify: 'Full',
      oauth_provider: 'Microsoft',
    },
    note: 'Office 365: signs in with OAuth 2.0, as Microsoft no longer accepts passwords for SMTP — enter the tenant and the application’s client ID below. The mailbox needs “Authenticated SMTP” enabled in the Microsoft 365 admin center.',
  },
  ses: {
    name: 'Amazon SES', values: { smtp_host: 'email-smtp.us-east-1.amazonaws.com', smtp_port: '587', smtp_connection_type: 'STARTTLS', smtp_authentication_type: 'Auto', smtp_tls_verify: 'Full' },
    note: 'Amazon SES: use the SMTP credentials from the SES console (not your AWS access keys), and a verified sender address.',
  },
  sendgrid: {
    name: 'SendGrid', values: { smtp_host: 'smtp.sendgrid.net', smtp_port: '587', smtp_connection_type: 'STARTTLS', smtp_authentication_type: 'Auto', smtp_tls_verify: 'Full', smtp_username: 'apikey' },
    note: 'SendGrid: the user name is literally “apikey”; the password is your API key.',
  },
  mailgun: {
    name: 'Mailgun', values: { smtp_host: 'smtp.mailgun.org', smtp_port: '587', smtp_connection_type: 'STARTTLS', smtp_authentication_type: 'Auto', smtp_tls_verify: 'Full' },
    note: 'Mailgun: the user name is the SMTP login of your domain (e.g. postmaster@mg.example.com); EU domains use smtp.eu.mailgun.org.',
  },
  local: {
    name: 'Local relay', values: { smtp_host: 'localhost', smtp_port: '25', smtp_connection_type: 'None', smtp_authentication_type: 'None', smtp_tls_verify: 'Full' },
    note: 'Local relay: a mail server on this machine that accepts mail without signing in.',
  },
};

const state = {
  saved: null,            // field → string, as the server last answered
  version: null,          // smtp_settings_version
  etag: null,
  secretSet: { smtp_password: false, oauth_client_secret: false },   // GET's *_set
  lastKnownGood: null,
  secretClear: { smtp_password: false, oauth_client_secret: false }, // "Remove the saved …" pressed
  portTyped: false,       // the user typed the port: never overwrite it
  touched: new Set(),     // fields whose errors are shown as the user types
  serverErrors: {},       // field → message from the last save
  warnings: {},           // field → message from the last save
  submitted: false,
  saving: false,
  regionError: null,
  fixNotes: {},           // field → the live check's note on a repair it applied      // the SES region field's own error (it is not a setting)
  conflict: null,         // { data, etag }: the other save a 409 told of, while the user chooses
  probeBlocked: false,    // Check/Test disabled because nothing is saved yet
  publicKey: null,        // Promise<CryptoKey>
  keyProblem: null,       // why a new password can't be encrypted, or null
  // What GET tells about OAuth beyond the fields. `supported`: this server knows the
  // oauth_* keys (an older responder refuses them as unknown fields).
  oauth: { supported: false, account: '', signedInAt: '', redirectUri: '', defaultScope: '' },
};

const form = $('settings-form');
const el = (name) => form.elements.namedItem(name);

// ---------------------------------------------------------------- values

function currentValues() {
  const v = {};
  for (const f of ALL_FIELDS) v[f] = el(f).value;
  return v;
}

/** What the form would send: one-line fields trimmed, the PEM as typed. */
function outgoingValues() {
  const v = currentValues();
  for (const f of ALL_FIELDS) if (f !== 'smtp_tls_ca_pem') v[f] = v[f].trim();
  if (!state.oauth.supported) for (const f of OAUTH_FIELDS) delete v[f];
  return v;
}

/** 'keep' the saved secret, save a 'new' one, or 'clear' it. */
function secretChange(name) {
  if (state.secretClear[name]) return 'clear';
  return el(name).value !== '' ? 'new' : 'keep';
}

function isDirty() {
  if (!state.saved) return false;
  const v = currentValues();
  return ALL_FIELDS.some((f) => v[f] !== state.saved[f]) || SECRET_NAMES.some((n) => secretChange(n) !== 'keep');
}

function setField(name, value) {
  const input = el(name);
  if (name === 'smtp_connection_type') {
    // SSL and TLS are stored spellings of the same thing; one option shows both.
    const sslOption = input.querySelector('option[value="SSL"], option[value="TLS"]');
    if (value === 'SSL' || value === 'TLS') sslOption.value = value;
  }
  input.value = value;
  if (input.tagName === 'SELECT' && input.value !== value) {
    // A value this page does not know: show it rather than silently change it.
    input.append(h('option', { value }, value));
    input.value = value;
  }
}

function applySaved(data, etag) {
  const saved = {};
  for (const f of ALL_FIELDS) saved[f] = data[f] === undefined || data[f] === null ? ALL_DEFAULTS[f] : String(data[f]);
  state.saved = saved;
  state.version = data.smtp_settings_version ?? state.version;
  state.etag = etag || (state.version !== null ? `"${state.version}"` : null);
  for (const n of SECRET_NAMES) state.secretSet[n] = Boolean(data[SECRETS[n].setKey]);
  // Read-only facts; an answer without one (a save answers no redirect URI) keeps what GET said.
  const text = (k, previous) => (typeof data[k] === 'string' ? data[k] : previous);
  const o = state.oauth;
  state.oauth = {
    supported: 'oauth_provider' in data,
    account: text('oauth_account', o.account), signedInAt: text('oauth_signed_in_at', o.signedInAt),
    redirectUri: text('oauth_redirect_uri', o.redirectUri), defaultScope: text('oauth_default_scope', o.defaultScope),
  };
  if ('last_known_good_version' in data) state.lastKnownGood = data.last_known_good_version;
  resetForm();
}

/** The form back to the saved state. */
function resetForm() {
  for (const f of ALL_FIELDS) setField(f, state.saved[f]);
  for (const n of SECRET_NAMES) {
    el(n).value = '';
    setSecretVisible(n, false);
    state.secretClear[n] = false;
  }
  state.portTyped = false;
  state.touched.clear();
  state.submitted = false;
  state.serverErrors = {};
  state.fixNotes = {};
  $('preset-note').textContent = '';
  $('ses-region-row').hidden = true;
  refresh();
}

// ---------------------------------------------------------------- rendering

function fieldBox(name) { return form.querySelector(`[data-field="${name}"]`); }

function message(name, kind, text) {
  const input = el(name) || $(name);
  const box = fieldBox(name) || input.closest('.field');
  const id = `${name}-${kind}`;
  let p = $(id);
  if (text) {
    if (!p) {
      p = h('p', { id, class: `field-${kind}` });
      const help = $(`${name}-help`);
      if (help) help.before(p); else box.append(p);
    }
    p.textContent = text;
  } else if (p) {
    p.remove();
  }
  describedBy(input, id, Boolean(text));
  if (kind === 'error') {
    if (text) input.setAttribute('aria-invalid', 'true'); else input.removeAttribute('aria-invalid');
    box.classList.toggle('has-error', Boolean(text));
  } else if (kind === 'warning') {
    box.classList.toggle('has-warning', Boolean(text));
  }
}

function refresh() {
  if (!schema) return;
  const values = currentValues();
  const errors = validate(values);
  // Errors show once a field was changed, or after Save; warnings and repairs at once.
  const shownErrors = {};
  for (const f of ALL_FIELDS) {
    const shown = state.serverErrors[f] || ((state.submitted || state.touched.has(f)) ? (errors[f] || liveError(f)) : null);
    if (shown) shownErrors[f] = shown;
    message(f, 'error', shown || null);
    message(f, 'warning', shown ? null : (state.warnings[f] || liveWarning(f)));
    message(f, 'fix', state.fixNotes[f] || null);
  }
  const secretErrors = secretProblems(values);
  for (const n of SECRET_NAMES) {
    const own = state.serverErrors[n] || secretErrors[n] || liveError(n);
    const shown = n === 'oauth_client_secret' && !(state.submitted || state.touched.has(n)) ? state.serverErrors[n] : own;
    message(n, 'error', shown || null);
    message(n, 'warning', shown ? null : (state.warnings[n] || liveWarning(n)));
  }

  const pinned = values.smtp_tls_verify === 'Pinned';
  // A section with an error shown in it is never hidden.
  $('pin-row').hidden = !pinned && !shownErrors.smtp_tls_pin_sha256;
  const authNone = values.smtp_authentication_type === 'None';
  $('auth-fields').hidden = authNone && !shownErrors.smtp_username && !state.serverErrors.smtp_password;
  // OAuth signs in with a token: the password has no part in it.
  const oauth = isOAuth(values.smtp_authentication_type);
  $('password-field').hidden = oauth && !state.serverErrors.smtp_password;
  $('oauth-section').hidden = !oauth && !OAUTH_FIELDS.concat('oauth_client_secret').some((f) => shownErrors[f] || state.serverErrors[f]);
  if ((state.serverErrors.smtp_tls_ca_pem || state.serverErrors.smtp_connect_timeout || state.serverErrors.smtp_command_timeout
       || (state.submitted && (errors.smtp_tls_ca_pem || errors.smtp_connect_timeout || errors.smtp_command_timeout)))) {
    $('advanced').open = true;
  }
  for (const n of SECRET_NAMES) renderSecretState(n);

  const dirty = isDirty();
  const ind = $('dirty-indicator');
  // Nothing saved yet: the version line says so; "All changes saved" would contradict it.
  ind.textContent = dirty ? 'Unsaved changes' : (state.saved && !firstRun() ? 'All changes saved' : '');
  ind.classList.toggle('is-dirty', dirty);
  form.classList.toggle('is-dirty', dirty);
  $('undo').disabled = !dirty || state.saving;
  $('save').disabled = state.saving;
  document.title = (dirty ? '• ' : '') + 'Email setup';
  renderVersionLine();
  renderProbeAvailability();
  renderRequired(values);
  if (state.conflict) renderConflict();
  page.onChange && page.onChange();
}

/** True while nothing was ever saved (GET answers version 0). */
function firstRun() { return state.version !== null && String(state.version) === '0'; }

/**
 * Check connection and Send test email use the saved settings: with nothing saved
 * they are disabled, with the reason beside them. Only the change of state touches
 * the buttons, so the probe module's own disabling (a run, a rate-limit wait) stands.
 */
function renderProbeAvailability() {
  const blocked = firstRun();
  if (blocked === state.probeBlocked) return;
  state.probeBlocked = blocked;
  $('probe-first-run').hidden = !blocked;
  for (const id of ['check-button', 'test-button']) {
    $(id).disabled = blocked;
    describedBy($(id), 'probe-first-run', blocked);
  }
}

/** The required marker (visible asterisk, `required` for screen readers) on fields required right now. */
function renderRequired(values) {
  const auth = values.smtp_authentication_type;
  const conditional = {
    smtp_username: auth !== 'None',
    smtp_tls_pin_sha256: values.smtp_tls_verify === 'Pinned',
  };
  for (const [name, on] of Object.entries(conditional)) {
    const input = el(name);
    input.required = on;
    const star = form.querySelector(`label[for="${name}"] .req`);
    if (star) star.hidden = !on;
  }
}

/** What is wrong with the secrets as they stand: { name: message }. */
function secretProblems(values) {
  const problems = {};
  for (const n of SECRET_NAMES) if (secretChange(n) === 'new' && state.keyProblem) problems[n] = state.keyProblem;
  // A missing app-only client secret is the server's warning (the live check shows it), not an error here.
  return problems;
}

function renderSecretState(name) {
  const { ids, noun } = SECRETS[name];
  const p = $(ids.state);
  const input = el(name);
  const change = secretChange(name);
  const isSet = state.secretSet[name];
  const clearing = state.secretClear[name];
  $(ids.clear).hidden = !isSet || clearing;
  $(ids.keep).hidden = !clearing;
  input.disabled = clearing || (Boolean(state.keyProblem) && !cryptoAvailable());
  p.className = 'password-state';
  if (clearing) {
    p.textContent = `The saved ${noun} will be removed when you save.`;
    p.classList.add('is-removing');
    input.placeholder = '';
  } else if (change === 'new') {
    p.textContent = isSet ? `A new ${noun} will replace the saved one when you save.` : `This ${noun} will be saved, encrypted.`;
    p.classList.add('is-new');
  } else if (isSet) {
    p.textContent = `A ${noun} is set — leave this empty to keep it.`;
    p.classList.add('is-set');
    input.placeholder = `Leave empty to keep the saved ${noun}`;
  } else {
    p.textContent = `No ${noun} is set.`;
    input.placeholder = '';
  }
  describedBy(input, ids.state, true);
  describedBy(input, `${name}-help`, true);
}

function setSecretVisible(name, visible) {
  const { ids, noun } = SECRETS[name];
  const input = el(name);
  const button = $(ids.toggle);
  input.type = visible ? 'text' : 'password';
  button.textContent = visible ? 'Hide' : 'Show';
  button.setAttribute('aria-pressed', String(visible));
  button.setAttribute('aria-label', visible ? `Hide ${noun}` : `Show ${noun}`);
}

function renderVersionLine() {
  const line = $('version-line');
  clear(line);
  if (state.version === null) return;
  line.append(h('span', { class: 'pill' }, String(state.version) === '0' ? 'Not saved yet' : `Version ${state.version}`));
  if (state.lastKnownGood !== null && state.lastKnownGood !== undefined && state.lastKnownGood !== '') {
    line.append(' ', h('span', { class: 'pill good', title: 'The newest version whose test email went through' },
      `Last known good: version ${state.lastKnownGood}`));
  }
}

function showBanner(text, kind = 'error', actions = []) {
  const b = $('banner');
  clear(b);
  if (!text) { b.hidden = true; return; }
  b.className = `banner ${kind}`;
  b.append(h('p', {}, text));
  if (actions.length) b.append(h('div', { class: 'banner-actions' }, actions));
  b.hidden = false;
}

function setStatus(text, kind = '') {
  const s = $('save-status');
  s.className = `save-status ${kind}`;
  s.textContent = text;
  // A "not saved" explanation stays in view with the buttons.
  form.classList.toggle('has-status', kind === 'error');
}

// ---------------------------------------------------------------- the public key

function loadPublicKey() {
  if (!cryptoAvailable()) {
    state.keyProblem = 'This page is not opened over HTTPS (or on localhost), so the browser offers no encryption (WebCrypto). A new password can’t be saved from here; everything else works. Open the page over HTTPS to change the password.';
    const n = $('crypto-notice');
    n.textContent = state.keyProblem;
    n.hidden = false;
    state.publicKey = null;
    return;
  }
  state.publicKey = api.publicKey().then(({ data }) => importPublicKey(data.public_key)).catch((e) => {
    state.keyProblem = e instanceof ApiError && e.notAvailable
      ? 'This server does not offer password encryption yet, so a new password can’t be saved; everything else works.'
      : `The server’s encryption key could not be loaded (${e.message}); a new password can’t be saved right now.`;
    refresh();
    return null;
  });
}

// ---------------------------------------------------------------- save

/** Saves the form; resolves to true when the settings were saved. */
async function save(event) {
  if (event) event.preventDefault();
  if (state.saving) return false;
  state.submitted = true;
  state.serverErrors = {};
  showBanner(null);
  // A repair the live check found for the field still being typed in applies now.
  // (Bounded: a slow answer never holds the Save button; the save itself checks again.)
  if (live.changed.size && !live.unavailable) await Promise.race([checkLive(0), new Promise((r) => setTimeout(r, 3000))]);
  applyFixes(true);
  refresh();
  const values = outgoingValues();
  // Everything known wrong at once: the live check's answer for these values, then the local checks.
  const fresh = live.answer && !live.changed.size && !live.scheduled
    ? Object.fromEntries(Object.entries(live.answer.errors).filter(([k]) => labelOf(k) && el(k))) : {};
  const errors = { ...fresh, ...validate(currentValues()), ...secretProblems(currentValues()) };
  if (state.regionError && !$('ses-region-row').hidden) errors['ses-region'] = state.regionError;
  const invalid = Object.keys(errors);
  if (invalid.length) {
    setStatus(`Not saved: ${invalid.length === 1 ? 'one field needs' : `${invalid.length} fields need`} attention.`, 'error');
    focusField(invalid.sort(order)[0]);
    return false;
  }
  // The grammar (host, address, fingerprint, certificates) is the server's: ask before saving.
  const remote = await validateRemote(api, liveData()).catch(() => null);
  if (remote && !remote.valid) {
    const fieldErrors = Object.fromEntries(Object.entries(remote.errors).filter(([k]) => labelOf(k)));
    state.serverErrors = fieldErrors;
    const n = Object.keys(fieldErrors).length;
    setStatus(`Not saved: ${n === 1 ? 'one field needs' : `${n} fields need`} attention.`, 'error');
    refresh();
    if (n) focusField(Object.keys(fieldErrors).sort(order)[0]);
    return false;
  }
  const data = { ...values };
  state.saving = true;
  $('save').textContent = 'Saving…';
  refresh();
  try {
    for (const n of SECRET_NAMES) {
      if (n === 'oauth_client_secret' && !state.oauth.supported) continue;
      const change = secretChange(n);
      if (change === 'clear') data[n] = '';
      if (change === 'new') {
        // A fresh key and nonce for every secret of every save: each ciphertext is accepted once.
        if (!(await state.publicKey)) throw new ApiError(0, { [n]: state.keyProblem || `The ${SECRETS[n].noun} could not be encrypted.` });
        const { data: fresh } = await api.publicKey();
        const key = await importPublicKey(fresh.public_key);
        data[n] = await encryptSecret(key, fresh.nonce, el(n).value);
      }
    }
    const { data: answer, etag } = await api.saveSettings(data, state.etag);
    const fixNotes = state.fixNotes; // what the live check repaired stays explained after the save
    hideConflict();
    state.warnings = answer.warnings && typeof answer.warnings === 'object' ? answer.warnings : {};
    applySaved(answer, etag);
    state.fixNotes = fixNotes;
    live.answer = { errors: {}, warnings: { ...state.warnings }, fixes: {} };
    live.sent = currentValues();
    const wcount = Object.keys(state.warnings).length;
    setStatus(`Saved as version ${state.version}.` + (wcount ? ` ${wcount === 1 ? 'One note' : `${wcount} notes`} to look at, marked below.` : ''), wcount ? 'warn' : 'ok');
    const unplaced = Object.entries(state.warnings).filter(([k]) => !labelOf(k));
    if (unplaced.length) showBanner(unplaced.map(([, m]) => m).join(' '), 'warning');
    page.onSaved && page.onSaved();
    return true;
  } catch (e) {
    handleSaveError(e);
    return false;
  } finally {
    state.saving = false;
    $('save').textContent = 'Save settings';
    refresh();
  }
}

/** Sorts field names in the order the page shows them. */
function order(a, b) {
  const x = el(a);
  const y = el(b);
  if (!x || !y || x === y) return (x ? 0 : 1) - (y ? 0 : 1);
  return x.compareDocumentPosition(y) & Node.DOCUMENT_POSITION_FOLLOWING ? -1 : 1;
}

function focusField(name) {
  const input = el(name) || $(name);
  if (!input) return;
  if (input.closest('details')) input.closest('details').open = true;
  input.focus();
}

function handleSaveError(e) {
  if (e instanceof NetworkError) {
    setStatus('Not saved.', 'error');
    showBanner(e.message);
    return;
  }
  const errors = e.errors || {};
  if (e.status === 409) {
    showConflict();
    return;
  }
  const fieldErrors = {};
  const other = [];
  for (const [k, m] of Object.entries(errors)) {
    if (labelOf(k)) fieldErrors[k] = capitalize(m);
    else other.push(m);
  }
  state.serverErrors = fieldErrors;
  const n = Object.keys(fieldErrors).length;
  if (n) {
    setStatus(`Not saved: the server found ${n === 1 ? 'a problem in one field' : `problems in ${n} fields`}.`, 'error');
    refresh();
    focusField(Object.keys(fieldErrors).sort(order)[0]);
  } else {
    setStatus('Not saved.', 'error');
  }
  if (other.length || !n) {
    let text = other.join(' ') || e.message;
    if (e.status === 429 && e.retryAfter) text += ` Try again in ${e.retryAfter} seconds.`;
    showBanner(text);
  }
}

// ---------------------------------------------------------------- conflict (409)

/** Field values of a GET or save answer, defaults filled in, as the form holds them. */
function valuesOf(data) {
  const v = {};
  for (const f of ALL_FIELDS) v[f] = data[f] === undefined || data[f] === null ? ALL_DEFAULTS[f] : String(data[f]);
  return v;
}

/**
 * Someone saved after this page loaded. Fetches their version and shows, by the
 * Save button, field by field what they changed and what the user changed, with
 * "Keep mine and save" and "Take theirs". The form keeps the user's edits meanwhile.
 */
async function showConflict() {
  setStatus('Not saved: someone else saved these settings meanwhile. Compare below and choose.', 'error');
  let answer;
  try {
    answer = await api.getSettings();
  } catch (e) {
    showBanner(`Someone else saved these settings meanwhile, and their version could not be loaded (${e.message}). Your changes are still in the form; try saving again in a moment.`);
    return;
  }
  state.conflict = { data: answer.data, etag: answer.etag };
  renderConflict();
  const panel = $('conflict');
  panel.hidden = false;
  // By the Save button: the bar stops floating over the page and both come into view together.
  form.classList.add('has-conflict');
  const actions = $('actions');
  const both = actions.getBoundingClientRect().bottom - panel.getBoundingClientRect().top;
  if (both <= window.innerHeight) actions.scrollIntoView({ block: 'end' });
  else panel.scrollIntoView({ block: 'start' });
  panel.focus({ preventScroll: true });
}

function shown(value) {
  return value === '' ? h('span', { class: 'muted-value' }, '(empty)') : value;
}

/** The comparison: every field that the other save or the user changed against the loaded version. */
function renderConflict() {
  const { data } = state.conflict;
  const base = state.saved;
  const theirs = valuesOf(data);
  const mine = currentValues();
  const rows = [];
  for (const f of ALL_FIELDS) {
    if (!el(f) || (!state.oauth.supported && OAUTH_FIELDS.includes(f))) continue;
    const theyChanged = theirs[f] !== base[f];
    const iChanged = mine[f] !== base[f];
    if (!theyChanged && !iChanged) continue;
    const clash = theyChanged && iChanged && theirs[f] !== mine[f];
    rows.push(h('tr', { class: clash ? 'clash' : '', 'data-field': f },
      h('th', { scope: 'row' }, page.label(f), clash ? h('span', { class: 'clash-mark' }, ' both changed') : null),
      h('td', { class: theyChanged ? '' : 'unchanged' }, theyChanged ? shown(theirs[f]) : 'not changed'),
      h('td', { class: iChanged ? '' : 'unchanged' }, iChanged ? shown(mine[f]) : 'not changed')));
  }
  for (const n of SECRET_NAMES) {
    if (n === 'oauth_client_secret' && !state.oauth.supported) continue;
    const theirsSet = Boolean(data[SECRETS[n].setKey]);
    const theyChanged = theirsSet !== state.secretSet[n];
    const change = secretChange(n);
    if (!theyChanged && change === 'keep') continue;
    const noun = SECRETS[n].noun;
    rows.push(h('tr', { 'data-field': n },
      h('th', { scope: 'row' }, page.label(n)),
      h('td', { class: theyChanged ? '' : 'unchanged' }, theyChanged ? (theirsSet ? `a ${noun} was set` : `the ${noun} was removed`) : 'not changed'),
      h('td', { class: change === 'keep' ? 'unchanged' : '' }, { keep: 'not changed', new: `a new ${noun}`, clear: `remove the ${noun}` }[change])));
  }
  const who = data.smtp_settings_version !== undefined ? `version ${data.smtp_settings_version}` : 'a newer version';
  $('conflict-text').textContent = rows.length
    ? `You loaded version ${state.version}; meanwhile ${who} was saved. What each side changed:`
    : `You loaded version ${state.version}; meanwhile ${who} was saved, with the same values as yours.`;
  const table = $('conflict-table');
  clear(table);
  if (rows.length) {
    table.append(h('table', {},
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Field'), h('th', { scope: 'col' }, `Theirs (${who})`), h('th', { scope: 'col' }, 'Yours'))),
      h('tbody', {}, rows)));
  }
}

function hideConflict() {
  state.conflict = null;
  $('conflict').hidden = true;
  form.classList.remove('has-conflict');
}

/**
 * Saves the user's changes on top of the other version: fields the user changed
 * take the user's value, the others keep theirs; If-Match names their version.
 */
async function keepMine() {
  if (!state.conflict) return;
  const { data, etag } = state.conflict;
  const mine = currentValues();
  const base = state.saved;
  const secrets = {};
  for (const n of SECRET_NAMES) secrets[n] = { value: el(n).value, clear: state.secretClear[n] };
  const portTyped = state.portTyped;
  const touched = new Set(state.touched);
  hideConflict();
  applySaved(data, etag);
  for (const f of ALL_FIELDS) if (mine[f] !== base[f]) setField(f, mine[f]);
  for (const n of SECRET_NAMES) { el(n).value = secrets[n].value; state.secretClear[n] = secrets[n].clear; }
  state.portTyped = portTyped;
  state.touched = touched;
  refresh();
  if (await save()) $('save-status').focus();
}

/** Shows the other version as saved; the user's changes are dropped, by their choice. */
function takeTheirs() {
  if (!state.conflict) return;
  const { data, etag } = state.conflict;
  hideConflict();
  state.warnings = {};
  applySaved(data, etag);
  checkLive(0);
  setStatus(`The form shows version ${state.version}, the other save; your changes were dropped.`, 'ok');
  page.onSaved && page.onSaved();
  $('save-status').focus();
}

function capitalize(m) { return typeof m === 'string' && m ? m[0].toUpperCase() + m.slice(1) : String(m); }

// ---------------------------------------------------------------- load

async function load(discard = false, quiet = false) {
  if (discard) showBanner(null);
  try {
    if (!schema) useSchema(await loadSchema(api));
    const { data, etag } = await api.getSettings();
    state.warnings = {};
    hideConflict();
    applySaved(data, etag);
    checkLive(0); // the saved settings' warnings, before anything is typed
    if (discard && !quiet) setStatus(`Reloaded version ${state.version}.`, 'ok');
    $('loading').hidden = true;
    form.hidden = false;
    $('side').hidden = false;
    page.onSaved && page.onSaved();
  } catch (e) {
    $('loading').hidden = true;
    const text = e instanceof ApiError && e.status === 503
      ? 'The settings database is not reachable right now. Try again in a moment.'
      : `The settings could not be loaded: ${e.message}`;
    showBanner(text, 'error', [h('button', { type: 'button', class: 'secondary small', onclick: () => load(true) }, 'Try again')]);
  }
}

// ---------------------------------------------------------------- live checking

/**
 * While the user types, the server's validate endpoint (the same rules as a save,
 * saving nothing) is asked again after a pause: its errors, warnings and fixes are
 * shown as a save would give them. `form.dataset.live` is "pending" until the
 * answer for the current values arrived ("done"), or "off" on a server without it.
 */
const live = {
  timer: null, controller: null, seq: 0,
  answer: null,           // { errors, warnings, fixes } for `sent`
  sent: null,             // the form's values when the answer's request went out
  changed: new Set(),     // fields typed in since: their remote errors are stale
  unavailable: false,
  waiters: [],            // resolved when an answer for the newest values arrived
  scheduled: false,       // a check is waiting for its pause to end
};
const LIVE_DELAY_MS = 350;

/** A value changed (typed, preset, fix): check it again after a pause. */
function onValuesChanged(name) {
  if (name) live.changed.add(name);
  checkLive(LIVE_DELAY_MS);
}

/** Asks again after `delay` ms; resolves when the newest values have their answer. */
function checkLive(delay) {
  clearTimeout(live.timer);
  if (live.unavailable) { form.dataset.live = 'off'; return Promise.resolve(); }
  form.dataset.live = 'pending';
  const done = new Promise((resolve) => live.waiters.push(resolve));
  live.scheduled = true;
  live.timer = setTimeout(runLiveCheck, delay);
  return done;
}

function liveSettled() {
  form.dataset.live = live.unavailable ? 'off' : 'done';
  const waiters = live.waiters;
  live.waiters = [];
  for (const w of waiters) w();
}

/** The body of a validate request: what a save would send, secrets as "keep" unless removed. */
function liveData() {
  const data = outgoingValues();
  for (const n of SECRET_NAMES) {
    if (n === 'oauth_client_secret' && !state.oauth.supported) continue;
    if (secretChange(n) === 'clear') data[n] = '';
  }
  return data;
}

async function runLiveCheck() {
  live.scheduled = false;
  if (!state.saved || live.unavailable) { liveSettled(); return; }
  if (live.controller) live.controller.abort();
  const controller = new AbortController();
  live.controller = controller;
  const seq = ++live.seq;
  const sent = currentValues();
  const changedBefore = new Set(live.changed);
  live.changed.clear();
  try {
    const answer = await validateRemote(api, liveData(), { signal: controller.signal });
    if (seq !== live.seq) return;
    live.answer = {
      errors: answer.errors || {}, warnings: answer.warnings || {}, fixes: answer.fixes || {},
    };
    live.sent = sent;
    state.warnings = {}; // the newest answer replaces the last save's warnings
    applyFixes(false);
  } catch (e) {
    if (seq !== live.seq) return;
    if (e instanceof ApiError && e.notAvailable) live.unavailable = true;
    // Unreachable for a moment: the local checks stand; the next change asks again.
    for (const f of changedBefore) live.changed.add(f);
  }
  if (seq === live.seq) {
    refresh();
    if (!live.scheduled) liveSettled();
  }
}

/**
 * Applies the server's repairs of misplaced input (`host:port`, a URL in the
 * server field): the values it names go to their fields, with the server's note.
 * Not under the cursor: a field being typed in is repaired when the user leaves it
 * (or saves).
 */
function applyFixes(force) {
  const fixes = live.answer ? live.answer.fixes : {};
  let applied = false;
  for (const [field, fix] of Object.entries(fixes)) {
    const input = el(field);
    if (!input || !fix || typeof fix.set !== 'object') continue;
    if (!force && document.activeElement === input) continue;
    if (input.value !== live.sent[field]) continue; // typed on since: the next answer decides
    for (const [k, v] of Object.entries(fix.set)) {
      if (!el(k)) continue;
      setField(k, String(v));
      delete state.serverErrors[k];
      delete live.answer.errors[k];
      live.changed.add(k);
      state.touched.add(k);
    }
    if ('smtp_port' in fix.set) state.portTyped = true; // chosen for this server: keep it
    state.fixNotes[field] = fix.note || 'Moved parts of this value to the fields they belong in.';
    delete fixes[field];
    applied = true;
  }
  if (applied) {
    checkLive(0);
    refresh();
  }
  return applied;
}

/** The error the live check gives a field, unless the field was typed in since it was asked. */
function liveError(f) {
  if (!live.answer || live.changed.has(f)) return null;
  return live.answer.errors[f] || null;
}

/** A warning of the live check; a "no password" warning is moot while a new one is typed. */
function liveWarning(f) {
  if (!live.answer) return null;
  if (SECRET_NAMES.includes(f) && secretChange(f) === 'new') return null;
  return live.answer.warnings[f] || null;
}

// ---------------------------------------------------------------- events

/** Each field's value as its last input or change event brought it. */
const lastInput = new Map();

function onInput(event) {
  const name = event.target.name;
  if (!name) return;
  // The "change" a field fires when it is left repeats what its "input" events brought:
  // nothing to check again, and no live message of it to drop (the layout would shift
  // under the pointer that is leaving the field, and the click would miss Save).
  if (event.type === 'change' && lastInput.get(name) === event.target.value) return;
  lastInput.set(name, event.target.value);
  if (name === 'smtp_port' && event.isTrusted !== false) state.portTyped = true;
  if (ALL_FIELDS.includes(name) || SECRET_NAMES.includes(name)) {
    delete state.serverErrors[name];
    delete state.warnings[name];
    delete state.fixNotes[name];
    // Changed by the user: its errors show from now on (tabbing through leaves it alone).
    if (event.type === 'input' || event.type === 'change') state.touched.add(name);
  }
  if (name === 'smtp_connection_type') linkPort();
  if (name === 'oauth_provider' && el('oauth_provider').value === 'Google' && el('oauth_grant').value === 'client_credentials') {
    // Google has no app-only SMTP sending: the one grant it offers.
    el('oauth_grant').value = 'authorization_code';
  }
  if (name === 'smtp_authentication_type' || name === 'smtp_tls_verify') {
    // Their cross-field rules concern other fields: check those as soon as they are set.
    state.touched.add('smtp_username');
  }
  if (name === 'oauth_grant') {
    // App-only needs the client secret: say so as soon as it is chosen.
    state.touched.add('oauth_client_secret');
  }
  // The live answer's errors of the fields this choice governs were for the old choice:
  // stale until the next answer, so a section they held open closes at once.
  for (const f of governedBy(name)) live.changed.add(f);
  setStatus('');
  onValuesChanged(name);
  refresh();
}

/** The fields whose rules the choice `name` sets (which of them apply, what they need). */
function governedBy(name) {
  if (name === 'smtp_tls_verify') return ['smtp_tls_pin_sha256'];
  if (name === 'smtp_authentication_type') return ['smtp_username', 'smtp_password', 'oauth_client_secret', ...OAUTH_FIELDS];
  if (name === 'oauth_provider' || name === 'oauth_grant') return ['oauth_client_secret', ...OAUTH_FIELDS];
  return [];
}

function linkPort() {
  const port = el('smtp_port');
  const suggestion = suggestedPort(el('smtp_connection_type').value);
  if (state.portTyped || port.value === suggestion) return;
  if (port.value.trim() === '' || STANDARD_PORTS.includes(port.value.trim())) {
    port.value = suggestion;
    $('preset-note').textContent = `Port set to ${suggestion}, the usual port for this kind of connection.`;
  }
}

function applyPreset(key) {
  const preset = PRESETS[key];
  for (const f of PRESET_OWNED) {
    if (!el(f)) continue;
    setField(f, preset.values[f] ?? ALL_DEFAULTS[f]);
    delete state.serverErrors[f];
    delete state.warnings[f];
  }
  // With OAuth the user name is the mailbox, usually the sender address itself.
  if (isOAuth(preset.values.smtp_authentication_type) && el('from_address').value.trim() !== '') {
    setField('smtp_username', el('from_address').value.trim());
  }
  $('ses-region-row').hidden = key !== 'ses';
  if (key === 'ses') $('ses-region').value = 'us-east-1';
  state.regionError = null;
  message('ses-region', 'error', null);
  state.portTyped = false;
  $('preset-note').textContent = `${preset.name} filled in. ${preset.note}`;
  onValuesChanged();
  refresh();
}

/** The SES region decides the host; a region that can't be one leaves the host as it was. */
function onRegion() {
  const region = $('ses-region').value.trim().toLowerCase();
  if (region === '') state.regionError = 'Enter the region of your SES account, like eu-west-1.';
  else if (!AWS_REGION.test(region)) {
    state.regionError = 'Not a region name: it looks like eu-west-1 (lower-case letters and a number joined by hyphens, no spaces).';
  } else {
    state.regionError = null;
    setField('smtp_host', `email-smtp.${region}.amazonaws.com`);
    delete state.serverErrors.smtp_host;
    onValuesChanged();
  }
  message('ses-region', 'error', state.regionError);
  refresh();
}

function init() {
  form.addEventListener('input', onInput);
  form.addEventListener('change', onInput);
  form.addEventListener('focusout', (e) => {
    const name = e.target.name;
    // A value that differs from the saved one (autofill fires no input event) counts as changed.
    if (ALL_FIELDS.includes(name) && state.saved && e.target.value !== state.saved[name]) { state.touched.add(name); refresh(); }
    // The field is left: a repair the live check proposed for it is applied now — or, when
    // a click left it, once the click is over: the note would move the button (Save) from
    // under the pointer between press and release, and the click would be lost.
    if (!pressing) setTimeout(() => applyFixes(false), 0);
  });
  let pressing = false;
  document.addEventListener('pointerdown', () => { pressing = true; }, true);
  for (const type of ['pointerup', 'pointercancel']) {
    document.addEventListener(type, () => { pressing = false; setTimeout(() => applyFixes(false), 0); }, true);
  }
  form.addEventListener('submit', save);
  $('conflict-keep-mine').addEventListener('click', keepMine);
  $('conflict-take-theirs').addEventListener('click', takeTheirs);
  $('undo').addEventListener('click', () => {
    showBanner(null);
    hideConflict();
    state.warnings = {};
    resetForm();
    checkLive(0);
    setStatus('Changes undone: the form shows the saved settings again.', 'ok');
    $('save').focus();
  });
  for (const n of SECRET_NAMES) {
    const { ids } = SECRETS[n];
    $(ids.toggle).addEventListener('click', () => setSecretVisible(n, el(n).type === 'password'));
    $(ids.clear).addEventListener('click', () => {
      state.secretClear[n] = true;
      el(n).value = '';
      state.touched.add(n);
      refresh();
      $(ids.keep).focus();
    });
    $(ids.keep).addEventListener('click', () => {
      state.secretClear[n] = false;
      refresh();
      el(n).focus();
    });
  }
  for (const b of form.querySelectorAll('[data-preset]')) b.addEventListener('click', () => applyPreset(b.dataset.preset));
  $('ses-region').addEventListener('input', onRegion);
  window.addEventListener('beforeunload', (e) => {
    if (isDirty()) { e.preventDefault(); e.returnValue = ''; }
  });
  // Ctrl/Cmd+S saves, as in any editor.
  document.addEventListener('keydown', (e) => {
    if ((e.ctrlKey || e.metaKey) && e.key === 's' && !form.hidden) { e.preventDefault(); form.requestSubmit(); }
  });
  loadPublicKey();
  initProbe(page);
  initHistory(page);
  initOAuth(page);
  initDiscover(page);
  load();
}

/** What the test/check and history modules may know and do. */
const LABELS_SECURITY = { SSL: 'SSL/TLS', TLS: 'SSL/TLS', STARTTLS: 'STARTTLS', None: 'None' };

export const page = {
  state,
  isDirty,
  onChange: null,
  onSaved: null,
  /** "Trust this certificate": Pinned with this fingerprint; the user still saves. */
  trustCertificate(sha256) {
    setField('smtp_tls_verify', 'Pinned');
    setField('smtp_tls_pin_sha256', sha256);
    delete state.serverErrors.smtp_tls_pin_sha256;
    state.touched.add('smtp_tls_pin_sha256');
    refresh();
    setStatus('Certificate check set to Pinned with this fingerprint. Save to apply it.', 'warn');
    el('smtp_tls_pin_sha256').focus();
  },
  /** "Use these settings" of a verified suggestion: port and connection security; the user still saves. */
  applySuggestion(suggestion) {
    setField('smtp_port', String(suggestion.port));
    setField('smtp_connection_type', suggestion.smtp_connection_type);
    state.portTyped = true; // the port was chosen for this connection security: keep it
    delete state.serverErrors.smtp_port;
    delete state.serverErrors.smtp_connection_type;
    refresh();
    setStatus(`Port set to ${suggestion.port} and Connection security to ${LABELS_SECURITY[suggestion.smtp_connection_type] || suggestion.smtp_connection_type}. Save to apply them.`, 'warn');
    el('smtp_port').focus();
  },
  /** "Use these settings" of a discovery: fills the proposal's fields; the user still saves. */
  applyDiscovery(proposal) {
    for (const [f, v] of Object.entries(proposal)) if (form.elements.namedItem(f)) { setField(f, String(v)); delete state.serverErrors[f]; }
    state.portTyped = true;
    refresh();
    setStatus('Filled in from what was verified just now. Enter the password if it signs in, then save.', 'warn');
  },
  /** Applies a save answer (restore) as if the user had saved. */
  applySaveAnswer(answer, etag) {
    state.warnings = answer.warnings && typeof answer.warnings === 'object' ? answer.warnings : {};
    applySaved(answer, etag);
    setStatus(`Restored: the settings are now version ${state.version}.`, 'ok');
  },
  showBanner,
  /** Draws the page again after something outside the form changed the state. */
  rerender: () => refresh(),
  reload: () => load(true),
  /** Reads the settings again without a "Reloaded" status (after sign-in or sign-out). */
  reloadQuietly: () => load(true, true),
  /** Saves like the Save button; resolves to true when saved. */
  save: () => save(),
  /** The form's current value of a field. */
  value: (name) => el(name).value,
  label: (f) => labelOf(f) || f,
  /** The schema's help text of a field (empty before the schema is loaded). */
  help: (f) => (schema && schema.field(f) ? schema.field(f).help : ''),
};

init();
