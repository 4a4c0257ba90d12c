#ifndef COPENSSL_H
#define COPENSSL_H
// OpenSSL headers plus tiny shims for the macros Swift cannot call.
// SSL and SSL_CTX objects are not safe to use from two threads at once;
// EVP contexts likewise belong to one thread at a time.
#include <openssl/ssl.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/hmac.h>
#include <openssl/bio.h>

// Shims used by the Smtp module (TLS).
#include "COpenSSL_tls.h"
// Shims used by the Storage module (secrets: RSA-OAEP, AES-GCM, legacy enc).
#include "COpenSSL_crypto.h"

#endif
