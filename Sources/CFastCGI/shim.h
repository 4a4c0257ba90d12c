// libfcgi's reentrant API (fcgiapp.h). FCGX_Init must run once before any
// FCGX_Accept_r; each FCGX_Request may be used by one thread at a time only.
#include <fcgiapp.h>
