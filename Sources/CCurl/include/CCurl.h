#ifndef CCURL_H
#define CCURL_H
// libcurl plus fixed-arity shims: curl_easy_setopt and curl_easy_getinfo are C
// variadic functions, which Swift cannot call, so each argument type gets one shim.
// Thread safety: a CURL easy handle (and a CURLM multi handle) belongs to one thread
// at a time; different handles may be used on different threads at once, once
// CCurl_global_init_default has returned (it is not thread-safe itself).
#include <curl/curl.h>

/// Runs curl_global_init(CURL_GLOBAL_DEFAULT): the macro is an OR of two macros,
/// which Swift does not import. Call once, before any other thread uses libcurl.
CURLcode CCurl_global_init_default(void);

/// curl_easy_setopt for options that take a long (timeouts, flags, sizes).
CURLcode CCurl_easy_setopt_long(CURL *handle, CURLoption option, long value);

/// curl_easy_setopt for options that take a C string (URL, CA file, post fields…).
/// libcurl copies strings passed this way (since 7.17.0), except CURLOPT_POSTFIELDS.
CURLcode CCurl_easy_setopt_string(CURL *handle, CURLoption option, const char *value);

/// curl_easy_setopt for options that take an object pointer (WRITEDATA, HTTPHEADER, ERRORBUFFER).
CURLcode CCurl_easy_setopt_pointer(CURL *handle, CURLoption option, void *value);

/// The CURLOPT_WRITEFUNCTION signature, named so Swift can pass a @convention(c) function.
typedef size_t (*CCurl_write_callback)(char *data, size_t size, size_t count, void *user);

/// curl_easy_setopt(CURLOPT_WRITEFUNCTION): a function pointer goes through the
/// variadic list with its own type, so it needs its own shim.
CURLcode CCurl_easy_setopt_write_callback(CURL *handle, CCurl_write_callback callback);

/// curl_easy_getinfo for infos that answer a long (CURLINFO_RESPONSE_CODE, CURLINFO_OS_ERRNO).
CURLcode CCurl_easy_getinfo_long(CURL *handle, CURLINFO info, long *value);

/// curl_easy_getinfo for infos that answer a string owned by the handle (CURLINFO_REDIRECT_URL).
CURLcode CCurl_easy_getinfo_string(CURL *handle, CURLINFO info, char **value);

/// The CURLcode of a finished transfer from a CURLMsg: it sits in a union that the
/// Swift importer exposes awkwardly; this reads it plainly.
CURLcode CCurl_message_result(const CURLMsg *message);
#endif
