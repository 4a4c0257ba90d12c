#ifndef COPENSSL_TLS_H
#define COPENSSL_TLS_H
#include <openssl/ssl.h>
// TLS shims (owned by the Smtp module).
#endif
