// A secret leaves the browser only encrypted with the server's RSA public key
// (RSA-OAEP, SHA-256, WebCrypto), base64 — DESIGN.md "Secrets". What is encrypted
// is {"nonce":"…","secret":"…"} with a nonce fetched with the key just before:
// the server accepts each ciphertext once, within the nonce's lifetime.

/** WebCrypto exists only in secure contexts (HTTPS, or http://localhost). */
export function cryptoAvailable() {
  return Boolean(globalThis.isSecureContext !== false && globalThis.crypto && globalThis.crypto.subtle);
}

function pemToDer(pem) {
  const b64 = pem.replace(/-----BEGIN [^-]+-----/, '').replace(/-----END [^-]+-----/, '').replace(/\s+/g, '');
  const bin = atob(b64);
  const bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let bin = '';
  for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
  return btoa(bin);
}

/** Imports an SPKI PEM public key for RSA-OAEP with SHA-256. */
export async function importPublicKey(pem) {
  return crypto.subtle.importKey('spki', pemToDer(pem), { name: 'RSA-OAEP', hash: 'SHA-256' }, false, ['encrypt']);
}

/**
 * `secret` framed with `nonce` and encrypted with `key`, base64: what POST
 * email_smtp accepts as smtp_password (and, later, other secret fields).
 */
export async function encryptSecret(key, nonce, secret) {
  const plaintext = JSON.stringify({ nonce, secret });
  const cipher = await crypto.subtle.encrypt({ name: 'RSA-OAEP' }, key, new TextEncoder().encode(plaintext));
  return toBase64(cipher);
}
