// libfcgi's reentrant API (fcgiapp.h). FCGX_Init must run once before any
// FCGX_Accept_r; each FCGX_Request may be used by one thread at a time only.
#include <fcgiapp.h>

// epoll, for the workers' wait on the shared listening socket: each worker has its
// own epoll instance with EPOLLEXCLUSIVE, so a new connection wakes one idle worker
// instead of all of them (Glibc's Swift module does not include sys/epoll.h).
#include <sys/epoll.h>
