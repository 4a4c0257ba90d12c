#ifndef COPENSSL_TLS_H
#define COPENSSL_TLS_H
#include <openssl/ssl.h>
// TLS shims (owned by the Smtp module). Each wraps an OpenSSL macro that Swift
// cannot import. Like the objects they take, none of them is safe to call on the
// same SSL or SSL_CTX from two threads at once.

/// SSL_CTX_set_min_proto_version is a macro over SSL_CTX_ctrl; sets TLS 1.2 as the floor.
/// Returns 1 on success, 0 on failure.
int CSmtpTLS_CTX_set_min_tls12(SSL_CTX *ctx);

/// SSL_set_tlsext_host_name is a macro over SSL_ctrl; sets the SNI host name.
/// Returns 1 on success, 0 on failure.
int CSmtpTLS_set_sni_host_name(SSL *ssl, const char *name);

/// SSL_set_mode is a macro over SSL_ctrl; allows a retried SSL_write to pass a buffer
/// at a different address (Swift arrays may move between retries) and partial writes.
void CSmtpTLS_set_write_modes(SSL *ssl);
#endif
