// The server's validation rules (Sources/EmailSetupFCGI/Settings/SettingsValidator.swift
// and the Smtp module's validators), checked as the user types. The server stays the
// authority: whatever it answers is shown the same way.

export const FIELDS = [
  'from_address', 'smtp_host', 'smtp_port', 'smtp_connection_type',
  'smtp_authentication_type', 'smtp_username', 'smtp_tls_verify',
  'smtp_tls_pin_sha256', 'smtp_tls_ca_pem', 'smtp_connect_timeout', 'smtp_command_timeout',
];

export const DEFAULTS = {
  from_address: '', smtp_host: '', smtp_port: '25', smtp_connection_type: 'None',
  smtp_authentication_type: 'None', smtp_username: '', smtp_tls_verify: 'Full',
  smtp_tls_pin_sha256: '', smtp_tls_ca_pem: '', smtp_connect_timeout: '10', smtp_command_timeout: '30',
};

/** The OAuth 2.0 settings (DESIGN.md "OAuth 2.0"); the client secret is a secret like the password. */
export const OAUTH_FIELDS = [
  'oauth_provider', 'oauth_grant', 'oauth_tenant', 'oauth_client_id', 'oauth_scope',
  'oauth_authorization_endpoint', 'oauth_token_endpoint', 'oauth_device_endpoint', 'oauth_revocation_endpoint',
];

export const OAUTH_DEFAULTS = {
  oauth_provider: 'Microsoft', oauth_grant: 'authorization_code', oauth_tenant: '', oauth_client_id: '',
  oauth_scope: '', oauth_authorization_endpoint: '', oauth_token_endpoint: '', oauth_device_endpoint: '',
  oauth_revocation_endpoint: '',
};

/** The sign-in methods that use an OAuth 2.0 token instead of a password. */
export const isOAuth = (auth) => auth === 'XOAUTH2' || auth === 'OAUTHBEARER';

/**
 * The scope used when the field is empty (the OAuth module's defaults). The server's
 * `oauth_default_scope` wins for the saved provider and grant; this covers the form
 * while the user changes them.
 */
export function defaultScope(provider, grant) {
  if (provider === 'Microsoft') {
    return grant === 'client_credentials' ? 'https://outlook.office365.com/.default'
      : 'https://outlook.office.com/SMTP.Send offline_access openid email';
  }
  if (provider === 'Google') return 'https://mail.google.com/ openid email';
  return '';
}

export const CONNECT_TIMEOUT = [1, 120];
export const COMMAND_TIMEOUT = [1, 600];
const MAX_LINE = 1024;
const MAX_PEM = 60000;

const utf8Length = (s) => new TextEncoder().encode(s).length;
const hasLineBreak = (s) => /[\r\n]/.test(s);
// eslint-disable-next-line no-control-regex
const hasControl = (s) => /[\u0000-\u001f\u007f]/.test(s);

function wholeNumberIn(value, lo, hi) {
  if (!/^[0-9]+$/.test(value)) return false;
  if (String(Number(value)) !== value) return false; // no leading zeros, as the server's Int round trip
  const n = Number(value);
  return n >= lo && n <= hi;
}

function ipv4(text) {
  const parts = text.split('.');
  if (parts.length !== 4) return false;
  return parts.every((p) => /^(0|[1-9][0-9]{0,2})$/.test(p) && Number(p) <= 255);
}

function ipv6(text) {
  if (text.includes('%')) return 'the IPv6 address has a zone id (“%…”), which a stored setting can’t use';
  if (!/^[0-9A-Fa-f:.]+$/.test(text)) return false;
  let head = text;
  let groupsFromV4 = 0;
  const lastColon = text.lastIndexOf(':');
  const tail = text.slice(lastColon + 1);
  if (tail.includes('.')) {
    if (!ipv4(tail)) return false;
    head = text.slice(0, lastColon + 1) + '0:0';
    groupsFromV4 = 0;
  }
  const double = head.split('::');
  if (double.length > 2) return false;
  const groups = (s) => (s === '' ? [] : s.split(':'));
  const left = groups(double[0]);
  const right = double.length === 2 ? groups(double[1]) : [];
  const all = left.concat(right);
  if (!all.every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return false;
  const count = all.length + groupsFromV4;
  return double.length === 2 ? count <= 7 : count === 8;
}

// A DNS name: labels of letters (any script, for internationalized names), digits
// and hyphens, not starting or ending with a hyphen, ≤ 63 each, ≤ 253 in all.
function domainName(text, allowTrailingDot) {
  let name = text;
  if (allowTrailingDot && name.endsWith('.')) name = name.slice(0, -1);
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => label.length > 0 && label.length <= 63
    && /^[\p{L}\p{N}](?:[\p{L}\p{N}\p{M}-]*[\p{L}\p{N}\p{M}])?$/u.test(label));
}

export function checkHost(value) {
  if (value === '') return 'Required: the SMTP server’s host name or IP address.';
  if (value !== value.trim()) return 'Remove the spaces at the start or end.';
  if (/\s/.test(value)) return 'A host name has no spaces.';
  if (value.startsWith('[') || value.endsWith(']')) {
    if (!(value.startsWith('[') && value.endsWith(']'))) return 'The brackets around the IPv6 address don’t match.';
    const r = ipv6(value.slice(1, -1));
    return r === true ? null : (r || 'This is not a valid IPv6 address.');
  }
  if (value.includes(':')) {
    const r = ipv6(value);
    return r === true ? null : (r || 'This is not a valid IPv6 address.');
  }
  const labels = value.replace(/\.$/, '').split('.');
  if (/^[0-9]+$/.test(labels[labels.length - 1])) {
    return ipv4(value) ? null : 'Not a valid IPv4 address: four numbers 0–255 separated by dots, without leading zeros.';
  }
  if (value.includes('_')) return 'Host names can’t contain “_”.';
  return domainName(value, true) ? null
    : 'Must be a host name like smtp.example.com (letters, digits, hyphens and dots) or an IP address.';
}

export function checkAddress(value) {
  if (value === '') return 'Required: the address every email is sent from.';
  if (value !== value.trim() ) return 'Remove the spaces at the start or end.';
  if (hasControl(value)) return 'Must not contain control characters or line breaks.';
  if (/[<>]/.test(value)) return 'Enter the address only, without “<” or “>” (like name@example.com).';
  const at = value.lastIndexOf('@');
  if (at < 0) return 'An email address needs an “@”, like name@example.com.';
  const local = value.slice(0, at);
  const domain = value.slice(at + 1);
  if (local === '') return 'Something is missing before the “@”.';
  if (domain === '') return 'The domain after the “@” is missing, like example.com.';
  const quoted = local.startsWith('"') && local.endsWith('"') && local.length >= 2;
  if (!quoted && local.includes('@')) return 'An email address has only one “@”.';
  if (!quoted && /\s/.test(local)) return 'An email address has no spaces.';
  if (!quoted && (local.startsWith('.') || local.endsWith('.') || local.includes('..'))) {
    return 'The part before the “@” can’t start or end with a dot or have two dots in a row.';
  }
  if (utf8Length(local) > 64) return 'The part before the “@” is longer than 64 characters.';
  if (utf8Length(value) > 254) return 'The address is longer than 254 characters.';
  if (domain.startsWith('[') && domain.endsWith(']')) {
    const lit = domain.slice(1, -1);
    if (ipv4(lit)) return null;
    if (/^ipv6:/i.test(lit) && ipv6(lit.slice(5)) === true) return null;
    return 'The address literal after the “@” is not a valid IP address.';
  }
  if (domain.endsWith('.')) return 'The domain must not end with a dot.';
  return domainName(domain, false) ? null : 'The part after the “@” must be a domain like example.com.';
}

export function normalizeFingerprint(value) {
  const hex = value.replace(/:/g, '').toLowerCase();
  return /^[0-9a-f]{64}$/.test(hex) ? hex : null;
}

/**
 * Every field error for `values` (an object of strings keyed by field name), as
 * the server would report them: { field: message }.
 */
export function validate(values) {
  const errors = {};
  const set = (k, m) => { if (m && !errors[k]) errors[k] = m; };
  for (const k of FIELDS.concat(OAUTH_FIELDS)) {
    const v = values[k] ?? '';
    if (k === 'smtp_tls_ca_pem') {
      if (utf8Length(v) > MAX_PEM) set(k, `Is longer than ${MAX_PEM} bytes.`);
      continue;
    }
    if (hasLineBreak(v)) set(k, 'Must be on one line (no line breaks).');
    else if (utf8Length(v) > MAX_LINE) set(k, `Is longer than ${MAX_LINE} bytes.`);
  }
  const v = (k) => (values[k] ?? '').trim();
  // The server trims one-line fields before checking them, and so does the page.
  if (!errors.from_address) set('from_address', checkAddress(v('from_address')));
  if (!errors.smtp_host) set('smtp_host', checkHost(v('smtp_host')));
  if (!errors.smtp_port && !wholeNumberIn(v('smtp_port'), 1, 65535)) {
    set('smtp_port', 'Must be a whole number from 1 to 65535.');
  }
  if (!errors.smtp_connect_timeout && !wholeNumberIn(v('smtp_connect_timeout'), ...CONNECT_TIMEOUT)) {
    set('smtp_connect_timeout', `Must be a whole number of seconds from ${CONNECT_TIMEOUT[0]} to ${CONNECT_TIMEOUT[1]}.`);
  }
  if (!errors.smtp_command_timeout && !wholeNumberIn(v('smtp_command_timeout'), ...COMMAND_TIMEOUT)) {
    set('smtp_command_timeout', `Must be a whole number of seconds from ${COMMAND_TIMEOUT[0]} to ${COMMAND_TIMEOUT[1]}.`);
  }
  const pin = v('smtp_tls_pin_sha256');
  if (!errors.smtp_tls_pin_sha256) {
    if (pin !== '' && !normalizeFingerprint(pin)) {
      set('smtp_tls_pin_sha256', 'Must be a SHA-256 fingerprint: 64 hex digits (colons allowed).');
    } else if (pin === '' && values.smtp_tls_verify === 'Pinned') {
      set('smtp_tls_pin_sha256', 'Required when verification is Pinned: the certificate’s SHA-256 fingerprint.');
    }
  }
  const pem = v('smtp_tls_ca_pem');
  if (!errors.smtp_tls_ca_pem && pem !== '' && !pem.includes('-----BEGIN CERTIFICATE-----')) {
    set('smtp_tls_ca_pem', 'Must contain PEM certificates (-----BEGIN CERTIFICATE-----).');
  }
  const auth = values.smtp_authentication_type || 'None';
  if (!errors.smtp_username) {
    if (hasControl(values.smtp_username ?? '')) set('smtp_username', 'Must not contain control characters.');
    else if (auth !== 'None' && v('smtp_username') === '') {
      set('smtp_username', `Required when authentication is ${labelOfAuth(auth)}.`);
    }
  }
  if (isOAuth(auth)) validateOAuth(values, v, set, errors);
  return errors;
}

/** The server's rules for an OAuth sign-in method (contract §5): what each provider and grant needs. */
function validateOAuth(values, v, set, errors) {
  const provider = values.oauth_provider || 'Microsoft';
  const grant = values.oauth_grant || 'authorization_code';
  if (!errors.oauth_client_id && v('oauth_client_id') === '') {
    set('oauth_client_id', 'Required for OAuth 2.0: the application (client) ID from the provider.');
  }
  if (provider === 'Microsoft' && !errors.oauth_tenant) {
    const tenant = v('oauth_tenant');
    if (tenant === '') set('oauth_tenant', 'Required for Microsoft 365: the tenant ID or one of its domains.');
    else if (!/^[A-Za-z0-9.-]+$/.test(tenant)) {
      set('oauth_tenant', 'Must be a tenant ID (like 00000000-0000-0000-0000-000000000000) or a domain like contoso.onmicrosoft.com.');
    }
  }
  if (provider === 'Google' && grant === 'client_credentials') {
    set('oauth_grant', 'Google offers no app-only sending over SMTP: choose “Sign in as a user”.');
  }
  if (provider !== 'Generic') return;
  const needed = grant === 'authorization_code'
    ? ['oauth_authorization_endpoint', 'oauth_token_endpoint'] : ['oauth_token_endpoint'];
  for (const k of ['oauth_authorization_endpoint', 'oauth_token_endpoint', 'oauth_device_endpoint', 'oauth_revocation_endpoint']) {
    if (errors[k]) continue;
    const url = v(k);
    if (url === '') {
      if (needed.includes(k)) set(k, 'Required for another provider: the endpoint’s full URL, https://….');
    } else if (!httpURL(url)) {
      set(k, 'Must be a full URL starting with https://.');
    }
  }
}

function httpURL(text) {
  try {
    const u = new URL(text);
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.host !== '';
  } catch {
    return false;
  }
}

export function labelOfAuth(a) {
  return {
    None: 'None', Plain: 'PLAIN', Login: 'LOGIN', Cram_MD5: 'CRAM-MD5', Auto: 'Automatic',
    XOAUTH2: 'OAuth 2.0', OAUTHBEARER: 'OAuth 2.0 (OAUTHBEARER)',
  }[a] || a;
}

/** The port a connection type normally uses. */
export function suggestedPort(type) {
  return { SSL: '465', TLS: '465', STARTTLS: '587', None: '25' }[type] || '25';
}
export const STANDARD_PORTS = ['25', '465', '587'];
