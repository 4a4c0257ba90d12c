#ifndef COPENSSL_CRYPTO_H
#define COPENSSL_CRYPTO_H
#include <openssl/evp.h>
#include <openssl/bio.h>
// Crypto shims (owned by the Storage module secrets).
// Thread safety: these add nothing to OpenSSL's rules. An EVP_PKEY may be read
// from several threads at once; a BIO belongs to one thread at a time.

// EVP_RSA_gen is a macro over the variadic EVP_PKEY_Q_keygen, and Swift cannot
// call C variadic functions: this is the fixed-arity form, one RSA key of `bits`.
EVP_PKEY *COpenSSL_EVP_RSA_gen(unsigned int bits);

// BIO_get_mem_data is a macro over BIO_ctrl that casts its out-pointer to char *;
// this returns the memory BIO's length and points *data at its bytes (owned by the BIO).
long COpenSSL_BIO_get_mem_data(BIO *bio, char **data);
#endif
