// c-ares, the stub resolver (Debian 12: 1.18.1). A channel is not thread-safe in this
// version, so every query (or batch) gets its own channel; ares_library_init runs
// once. Used only by Sources/MailDNS/DNSResolver.swift.
#include <ares.h>
#include <arpa/nameser.h>
