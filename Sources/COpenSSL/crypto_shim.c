#include "COpenSSL.h"
// Crypto shims: see include/COpenSSL_crypto.h
