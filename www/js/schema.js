// The settings schema as the server serves it (GET /api/setup/email_smtp/schema):
// keys, types, defaults, ranges, values, labels and help texts. The page builds its
// field rules and labels from it and checks here only what needs no grammar
// (required, length, line breaks, whole numbers in range, one of the values); host
// names, addresses, fingerprints and certificates are the server's to judge, through
// POST /api/setup/email_smtp/validate (`validateRemote`), with the same words a save uses.

/**
 * Loads the schema. Resolves to a Schema: `fields` (in page order), `field(key)`,
 * `defaults()` (key → default string), `label(key)`.
 */
export async function loadSchema(api) {
  const { data } = await api.schema();
  return makeSchema(data.fields || []);
}

/** A Schema over a list of fields as the endpoint answers them. */
export function makeSchema(fields) {
  const byKey = new Map(fields.map((f) => [f.key, f]));
  return {
    fields,
    field: (key) => byKey.get(key),
    defaults: () => Object.fromEntries(fields.filter((f) => !f.secret).map((f) => [f.key, f.default ?? ''])),
    label: (key) => byKey.get(key)?.label ?? key,
  };
}

const utf8Length = (s) => new TextEncoder().encode(s).length;

/** The enumeration's value as messages name it ("None: no sign-in" → "None"): the schema's short_label, cut by the server's one rule. */
function valueLabel(field, value) {
  const v = (field.values || []).find((x) => x.value === value);
  return v ? v.short_label ?? v.label : value;
}

/**
 * What the page can check alone, as `{key: message}` in the server's words:
 * required, length, line breaks, whole numbers in range, one of the values.
 * Everything else (grammar, what needs another field) comes from `validateRemote`.
 */
export function localErrors(schema, values) {
  const errors = {};
  for (const f of schema.fields) {
    if (f.secret) continue;
    const raw = values[f.key];
    if (raw === undefined || raw === null) continue;
    const text = String(raw);
    const v = f.multiline ? text : text.trim();
    let message = null;
    if (text.includes('\u0000')) message = `${f.label} must not contain NUL characters.`;
    else if (!f.multiline && /[\r\n]/.test(text)) message = `${f.label} must be on one line (no line breaks).`;
    else if (utf8Length(text) > f.max_length) message = `${f.label} is longer than ${f.max_length} bytes.`;
    else if (v === '' && f.required) message = `${f.label} is required.`;
    else if (f.type === 'integer' && v !== '' && !wholeNumberIn(v, f.min, f.max)) {
      message = f.key === 'smtp_port' ? `${f.label} must be a whole number from ${f.min} to ${f.max}.`
        : `${f.label} must be a whole number of seconds from ${f.min} to ${f.max}.`;
    } else if (f.type === 'enum' && v !== '' && !accepted(f).some((x) => x.toLowerCase() === v.toLowerCase().replace(/-/g, '_'))) {
      message = `${f.label} must be one of ${accepted(f).join(', ')}, not “${v.slice(0, 40)}”.`;
    }
    if (message) errors[f.key] = message;
  }
  return errors;
}

function accepted(field) {
  return (field.values || []).map((x) => x.value).concat(field.also_accepted || []);
}

function wholeNumberIn(value, lo, hi) {
  if (!/^[0-9]+$/.test(value) || (value.length > 1 && value.startsWith('0'))) return false;
  const n = Number(value);
  return n >= lo && n <= hi;
}

/**
 * Asks the server what a save of `data` would answer, saving nothing. Resolves to
 * `{valid, errors, warnings, values, fixes}` (fixes: `{key: {set: {…}, note}}`).
 */
export async function validateRemote(api, data, { signal } = {}) {
  const { data: answer } = await api.validateSettings(data, signal);
  return answer;
}

/**
 * A first look at a recipient address before a test email: present, one “@” with
 * something on both sides, no spaces. The server checks the rest and says what is wrong.
 */
export function checkAddress(value) {
  if (value === '') return 'An email address is required, like name@example.com.';
  const at = value.lastIndexOf('@');
  if (at <= 0 || at === value.length - 1) return 'An email address needs an “@” with something before and after it, like name@example.com.';
  return null;
}

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

/** The port a connection type normally uses. */
export function suggestedPort(type) {
  return { SSL: '465', TLS: '465', STARTTLS: '587', None: '25' }[type] || '25';
}
export const STANDARD_PORTS = ['25', '465', '587'];

/** The label of a value of an enumerated field ("Login" → "LOGIN"). */
export function labelOfValue(schema, key, value) {
  const f = schema.field(key);
  return f ? valueLabel(f, value) : value;
}
