#include "COpenSSL.h"
// TLS shims: see include/COpenSSL_tls.h

// Macro in OpenSSL (SSL_CTX_ctrl with SSL_CTRL_SET_MIN_PROTO_VERSION).
int CSmtpTLS_CTX_set_min_tls12(SSL_CTX *ctx) {
    return SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) == 1 ? 1 : 0;
}

// Macro in OpenSSL (SSL_ctrl with SSL_CTRL_SET_TLSEXT_HOSTNAME).
int CSmtpTLS_set_sni_host_name(SSL *ssl, const char *name) {
    return SSL_set_tlsext_host_name(ssl, name) == 1 ? 1 : 0;
}

// Macro in OpenSSL (SSL_ctrl with SSL_CTRL_MODE).
void CSmtpTLS_set_write_modes(SSL *ssl) {
    SSL_set_mode(ssl, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
}
