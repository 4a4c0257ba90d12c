#include "CCurl.h"
#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
// libcurl is loaded on first use (dlopen), not by the dynamic loader at start:
// with its ~30 dependencies (GnuTLS for librtmp, Kerberos, LDAP, SSH, …) it cost
// ~4 ms of every process start, which under plain CGI is every request, and only
// OAuth 2.0 token requests and discovery's autoconfig fetch use it
// (docs/DECISIONS.md, "CGI start-up"). So the binary does not link -lcurl: this
// file defines the libcurl functions the Swift code calls, each forwarding to the
// loaded library. A libcurl function used from Swift must be listed in
// CURL_FUNCTIONS below, or the link fails with an undefined symbol (the reminder).

#define CURL_FUNCTIONS(X) \
    X(CURLcode, global_init, (long flags), (flags)) \
    X(CURL *, easy_init, (void), ()) \
    X(void, easy_cleanup, (CURL *handle), (handle)) \
    X(const char *, easy_strerror, (CURLcode code), (code)) \
    X(CURLM *, multi_init, (void), ()) \
    X(CURLMcode, multi_add_handle, (CURLM *multi, CURL *easy), (multi, easy)) \
    X(CURLMcode, multi_remove_handle, (CURLM *multi, CURL *easy), (multi, easy)) \
    X(CURLMcode, multi_perform, (CURLM *multi, int *running), (multi, running)) \
    X(CURLMcode, multi_poll, (CURLM *multi, struct curl_waitfd extra[], unsigned int count, int timeout_ms, int *ret), \
      (multi, extra, count, timeout_ms, ret)) \
    X(CURLMcode, multi_cleanup, (CURLM *multi), (multi)) \
    X(CURLMsg *, multi_info_read, (CURLM *multi, int *queued), (multi, queued)) \
    X(struct curl_slist *, slist_append, (struct curl_slist *list, const char *text), (list, text)) \
    X(void, slist_free_all, (struct curl_slist *list), (list))

static struct {
#define FIELD(ret, name, params, args) ret (*name) params;
    CURL_FUNCTIONS(FIELD)
#undef FIELD
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
} lib;
static int loaded;  // 1 once every symbol was found
static pthread_once_t once = PTHREAD_ONCE_INIT;

static void load(void) {
    void *handle = dlopen("libcurl.so.4", RTLD_NOW | RTLD_LOCAL);
    if (!handle) return;
#define LOOKUP(ret, name, params, args) if (!(*(void **)&lib.name = dlsym(handle, "curl_" #name))) return;
    CURL_FUNCTIONS(LOOKUP)
    LOOKUP(, easy_setopt, , )
    LOOKUP(, easy_getinfo, , )
#undef LOOKUP
    loaded = 1;
}

static int ready(void) {
    pthread_once(&once, load);
    return loaded;
}

// Before global_init succeeds nothing else is called (HTTPSClient checks it), so only
// the functions that can come first answer a failure when libcurl is missing.
CURLcode curl_global_init(long flags) { return ready() ? lib.global_init(flags) : CURLE_FAILED_INIT; }
CURL *curl_easy_init(void) { return ready() ? lib.easy_init() : NULL; }
CURLM *curl_multi_init(void) { return ready() ? lib.multi_init() : NULL; }
const char *curl_easy_strerror(CURLcode code) {
    return ready() ? lib.easy_strerror(code) : "libcurl.so.4 could not be loaded (install libcurl4)";
}
void curl_easy_cleanup(CURL *handle) { if (ready()) lib.easy_cleanup(handle); }
CURLMcode curl_multi_add_handle(CURLM *multi, CURL *easy) { return lib.multi_add_handle(multi, easy); }
CURLMcode curl_multi_remove_handle(CURLM *multi, CURL *easy) { return lib.multi_remove_handle(multi, easy); }
CURLMcode curl_multi_perform(CURLM *multi, int *running) { return lib.multi_perform(multi, running); }
CURLMcode curl_multi_poll(CURLM *multi, struct curl_waitfd extra[], unsigned int count, int timeout_ms, int *ret) {
    return lib.multi_poll(multi, extra, count, timeout_ms, ret);
}
CURLMcode curl_multi_cleanup(CURLM *multi) { return ready() ? lib.multi_cleanup(multi) : CURLM_BAD_HANDLE; }
CURLMsg *curl_multi_info_read(CURLM *multi, int *queued) { return lib.multi_info_read(multi, queued); }
struct curl_slist *curl_slist_append(struct curl_slist *list, const char *text) {
    return ready() ? lib.slist_append(list, text) : NULL;
}
void curl_slist_free_all(struct curl_slist *list) { if (ready()) lib.slist_free_all(list); }

// Fixed-arity forms of libcurl's variadic calls: see include/CCurl.h.

CURLcode CCurl_global_init_default(void) {
    return curl_global_init(CURL_GLOBAL_DEFAULT);
}

CURLcode CCurl_easy_setopt_long(CURL *handle, CURLoption option, long value) {
    return lib.easy_setopt(handle, option, value);
}

CURLcode CCurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value) {
    return lib.easy_setopt(handle, option, value);
}

CURLcode CCurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value) {
    return lib.easy_setopt(handle, option, value);
}

CURLcode CCurl_easy_setopt_write_callback(CURL *handle, CCurl_write_callback callback) {
    return lib.easy_setopt(handle, CURLOPT_WRITEFUNCTION, callback);
}

CURLcode CCurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value) {
    return lib.easy_getinfo(handle, info, value);
}

CURLcode CCurl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value) {
    return lib.easy_getinfo(handle, info, value);
}

CURLcode CCurl_message_result(const CURLMsg *message) {
    return message->data.result;
}
