#include "COpenSSL.h"
// TLS shims: see include/COpenSSL_tls.h
