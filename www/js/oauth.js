// The OAuth 2.0 part of the form (DESIGN.md "OAuth 2.0"): which rows a provider
// and grant need, what to register at the provider (with the redirect URI to
// copy), and signing in and out. Signing in always uses the *saved* settings:
// with unsaved changes the page asks to save first. The provider sends the
// browser back to `/?oauth=signed_in` or `/?oauth=error&message=…`; the outcome
// is shown in this section and the query removed from the address bar.

import { api, ApiError, NetworkError } from './api.js';
import { $, h, clear, formatDate } from './dom.js';
import { isOAuth, defaultScope } from './schema.js';

const PROVIDER_NAMES = { Microsoft: 'Microsoft', Google: 'Google' };
const USERNAME_HELP = {
  user: 'The mailbox this system sends as — the account that signs in below, usually the full email address.',
  app: 'The mailbox the application sends as; it needs permission to send from it (see below).',
};

let page;
let pending = null;      // the action waiting for "Save and continue"
let returned = null;     // { ok, message } read from the address bar on return from the provider
let busy = false;

export function initOAuth(p) {
  page = p;
  returned = takeReturnFromURL();
  const changed = page.onChange;
  page.onChange = () => { changed && changed(); render(); };
  const saved = page.onSaved;
  page.onSaved = () => {
    saved && saved();
    if (returned) { showReturn(returned); returned = null; }
  };
  $('oauth-sign-in').addEventListener('click', () => guarded(signIn));
  $('oauth-sign-out').addEventListener('click', () => guarded(signOut));
  $('oauth-save-continue').addEventListener('click', saveAndContinue);
  $('oauth-save-cancel').addEventListener('click', () => {
    pending = null;
    $('oauth-save-first').hidden = true;
    $('oauth-sign-in').focus();
  });
  $('oauth-redirect-copy').addEventListener('click', copyRedirectURI);
  page.focusOAuthSignIn = focusSignIn;
  page.canSignIn = () => signInOffered(savedValues());
}

// ---------------------------------------------------------------- what shows

function formValues() {
  const v = {};
  for (const k of ['smtp_authentication_type', 'oauth_provider', 'oauth_grant']) v[k] = page.value(k);
  return v;
}

function savedValues() { return page.state.saved || {}; }

function signInOffered(v) {
  return isOAuth(v.smtp_authentication_type) && v.oauth_grant !== 'client_credentials';
}

function render() {
  const v = formValues();
  const oauth = isOAuth(v.smtp_authentication_type);
  const provider = v.oauth_provider;
  const appOnly = v.oauth_grant === 'client_credentials';
  const errors = page.state.serverErrors;
  // Outside OAuth the schema's help (the password sign-in's words) is shown.
  $('smtp_username-help').textContent = oauth ? USERNAME_HELP[appOnly ? 'app' : 'user'] : page.help('smtp_username') || $('smtp_username-help').textContent;
  if (!oauth && $('oauth-section').hidden) return;

  $('oauth-tenant-row').hidden = provider !== 'Microsoft' && !errors.oauth_tenant;
  $('oauth-grant-row').hidden = provider === 'Google' && !appOnly && !errors.oauth_grant;
  $('oauth-endpoints').hidden = provider !== 'Generic'
    && !['authorization', 'token', 'device', 'revocation'].some((k) => errors[`oauth_${k}_endpoint`]);

  const saved = savedValues();
  const scope = saved.oauth_provider === provider && saved.oauth_grant === v.oauth_grant && page.state.oauth.defaultScope
    ? page.state.oauth.defaultScope : defaultScope(provider, v.oauth_grant);
  $('oauth_scope').placeholder = scope || 'the scope your server requires for sending mail';

  renderRegister(provider, appOnly);
  renderSignIn(v, provider, appOnly);
}

/** What to set up at the provider, in a few sentences, with the redirect URI to copy. */
function renderRegister(provider, appOnly) {
  const text = clear($('oauth-register-text'));
  const code = (c) => h('code', {}, c);
  if (provider === 'Microsoft' && appOnly) {
    text.append('In the Microsoft Entra admin center, App registrations → New registration. Under Certificates & secrets create a client secret; under API permissions add the application permission ',
      code('SMTP.SendAsApp'), ' (APIs my organization uses → Office 365 Exchange Online) and grant admin consent. Then allow the app to send from the mailbox in Exchange Online PowerShell (',
      code('New-ServicePrincipal'), ', ', code('Add-MailboxPermission'), ').');
  } else if (provider === 'Microsoft') {
    text.append('In the Microsoft Entra admin center, App registrations → New registration, platform Web, with the redirect URI below. Under Certificates & secrets create a client secret; under API permissions add the delegated permission ',
      code('SMTP.Send'), ' (Microsoft Graph) and ', code('offline_access'), '. The mailbox needs Authenticated SMTP enabled.');
  } else if (provider === 'Google') {
    text.append('In the Google Cloud console, APIs & Services → Credentials → Create credentials → OAuth client ID, type Web application, with the redirect URI below as an authorized redirect URI. The OAuth consent screen needs the scope ',
      code('https://mail.google.com/'), '.');
  } else {
    text.append(appOnly
      ? 'Register a confidential client allowed the client credentials grant, with a scope that lets it send mail through your SMTP server.'
      : 'Register a confidential client with the redirect URI below, allowed the authorization code grant (with PKCE) and refresh tokens, and a scope that lets it send mail through your SMTP server.');
  }
  $('oauth-redirect-row').hidden = appOnly;
  const uri = page.state.oauth.redirectUri;
  $('oauth-redirect-uri').value = uri || 'Not known: set public_url in the responder’s configuration.';
  $('oauth-redirect-copy').hidden = !uri;
}

function renderSignIn(v, provider, appOnly) {
  const status = $('oauth-status');
  const button = $('oauth-sign-in');
  const out = $('oauth-sign-out');
  const help = $('oauth-signin-help');
  const { account, signedInAt } = page.state.oauth;
  const name = PROVIDER_NAMES[provider];
  button.textContent = name ? `Sign in with ${name}` : 'Sign in';
  status.className = 'signin-status';
  if (appOnly) {
    status.textContent = 'App-only: nobody signs in. This system gets its tokens with the client ID and secret.';
    button.hidden = true;
    out.hidden = true;
    help.textContent = '';
    $('oauth-save-first').hidden = true;
    return;
  }
  button.hidden = false;
  out.hidden = !account;
  if (account) {
    status.textContent = `Signed in as ${account} · renews automatically`;
    status.classList.add('is-signed-in');
    button.className = 'secondary';
    help.textContent = (signedInAt ? `Signed in ${formatDate(signedInAt)}. ` : '')
      + 'Sign in again to use another account or after the provider revoked access. Sign out forgets the token here (and revokes it where the provider allows).';
  } else {
    status.textContent = 'Not signed in.';
    button.className = 'primary';
    help.textContent = 'Sign in once with the mailbox’s account (after saving the settings); from then on this system renews its tokens by itself.';
  }
}

// ---------------------------------------------------------------- sign in and out

async function guarded(action) {
  if (busy) return;
  if (page.isDirty()) {
    pending = action;
    $('oauth-save-first-text').textContent = action === signIn
      ? 'You have unsaved changes. Signing in uses the saved settings: save them first.'
      : 'You have unsaved changes. Save them before signing out.';
    $('oauth-save-first').hidden = false;
    $('oauth-save-continue').focus();
    return;
  }
  await action();
}

async function saveAndContinue() {
  const action = pending;
  pending = null;
  $('oauth-save-first').hidden = true;
  if (!(await page.save())) return; // the save status says why, next to the fields
  if (action) await action();
}

async function signIn() {
  if (!signInOffered(savedValues())) {
    outcome(false, 'Signing in needs the saved sign-in method OAuth 2.0 with “Sign in as a user”.');
    return;
  }
  busy = true;
  const button = $('oauth-sign-in');
  const label = button.textContent;
  button.disabled = true;
  button.textContent = 'Opening the sign-in page…';
  try {
    const { data } = await api.oauthStart();
    if (!data.authorization_url) throw new Error('the server gave no sign-in address');
    window.location.assign(data.authorization_url);
    // The page stays disabled while the browser leaves for the provider.
  } catch (e) {
    busy = false;
    button.disabled = false;
    button.textContent = label;
    outcome(false, `Signing in could not start: ${reason(e)}`);
  }
}

async function signOut() {
  busy = true;
  const button = $('oauth-sign-out');
  button.disabled = true;
  try {
    const { data } = await api.oauthSignOut();
    await page.reloadQuietly();
    outcome(true, data.revoked
      ? 'Signed out: the token is revoked at the provider and forgotten here.'
      : 'Signed out: the token is forgotten here. The provider offers no revocation; the last access token expires by itself within the hour.');
  } catch (e) {
    outcome(false, `Signing out failed: ${reason(e)}`);
  } finally {
    busy = false;
    button.disabled = false;
  }
}

function reason(e) {
  if (e instanceof ApiError && e.notAvailable) return 'this server does not offer OAuth sign-in yet.';
  if (e instanceof ApiError) {
    const d = e.body && e.body.diagnosis;
    const text = (d && d.hint) || Object.values(e.errors).join(' ') || e.message;
    return text.endsWith('.') ? text : `${text}.`;
  }
  if (e instanceof NetworkError) return e.message;
  return `${String(e.message || e)}.`;
}

// ---------------------------------------------------------------- coming back from the provider

/** Reads ?oauth=… and removes it, so a reload or a bookmark does not show it again. */
function takeReturnFromURL() {
  const params = new URLSearchParams(window.location.search);
  const kind = params.get('oauth');
  if (!kind) return null;
  const message = params.get('message') || '';
  params.delete('oauth');
  params.delete('message');
  const query = params.toString();
  window.history.replaceState(window.history.state, '', window.location.pathname + (query ? `?${query}` : '') + window.location.hash);
  if (kind === 'signed_in') return { ok: true, message: null };
  return { ok: false, message: message || 'the provider did not say why.' };
}

function showReturn(r) {
  const account = page.state.oauth.account;
  if (r.ok) {
    outcome(true, account
      ? `Signed in as ${account}. This system now renews its tokens by itself — send a test email to try it.`
      : 'Signed in. Send a test email to try it.');
  } else {
    outcome(false, `Signing in did not complete: ${r.message}`);
  }
}

/** The result of a sign-in or sign-out, where the user is looking: next to the buttons. */
function outcome(ok, text) {
  if ($('oauth-section').hidden) {
    // The saved settings no longer use OAuth (or never did): the banner is what shows.
    page.showBanner(text, ok ? 'warning' : 'error');
    return;
  }
  const box = $('oauth-outcome');
  box.className = `oauth-outcome ${ok ? 'ok' : 'bad'}`;
  box.setAttribute('role', ok ? 'status' : 'alert');
  box.textContent = text;
  box.hidden = false;
  box.scrollIntoView({ block: 'center' });
  box.focus({ preventScroll: true });
}

function focusSignIn() {
  const button = $('oauth-sign-in');
  if (button.hidden || $('oauth-section').hidden) return;
  button.scrollIntoView({ block: 'center' });
  button.focus({ preventScroll: true });
}

// ---------------------------------------------------------------- copy

async function copyRedirectURI() {
  const input = $('oauth-redirect-uri');
  const status = $('oauth-redirect-status');
  let copied = false;
  try {
    await navigator.clipboard.writeText(input.value);
    copied = true;
  } catch {
    // No clipboard permission (or an older browser): select it and ask the browser to copy.
    input.select();
    try { copied = document.execCommand('copy'); } catch { copied = false; }
  }
  status.textContent = copied ? 'Copied.' : 'Selected: press Ctrl+C (⌘C) to copy it.';
  if (!copied) input.select();
}
