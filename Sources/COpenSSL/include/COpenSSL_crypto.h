#ifndef COPENSSL_CRYPTO_H
#define COPENSSL_CRYPTO_H
#include <openssl/evp.h>
// Crypto shims (owned by the Storage module secrets).
#endif
