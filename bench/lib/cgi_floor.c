/* The floor of a CGI GET /api/setup/email_smtp: what bench/lib/email_smtp.php does
 * (the same two prepared statements, the same JSON), in C over libmariadb, as one
 * process per request. Nothing a real responder needs beyond that: no configuration
 * file, no authentication, no key directory, no log. bench/cgi/run times it beside
 * php-cgi and emailsetup; what it costs is what loading libmariadb (and its libssl,
 * libcrypto), connecting and two queries cost on this machine.
 * Reads BENCH_DB_SOCKET, BENCH_DB_USER, BENCH_DB_PASSWORD, BENCH_DB_NAME.
 * build: cc -O2 -o cgi-floor cgi_floor.c $(pkg-config --cflags --libs libmariadb) */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *keys[] = {"from_address", "smtp_username", "smtp_password", "smtp_host", "smtp_port",
    "smtp_connection_type", "smtp_authentication_type", "smtp_tls_verify", "smtp_tls_pin_sha256",
    "smtp_tls_ca_pem", "smtp_connect_timeout", "smtp_command_timeout", "smtp_settings_version"};
static const char *defaults[] = {"", "", NULL, "", "25", "None", "None", "Full", "", "", "10", "30", "0"};
#define NKEYS (sizeof keys / sizeof keys[0])
static char *stored[NKEYS];

static void fail(const char *what, const char *why) {
    printf("Status: 503 Service Unavailable\r\nContent-Type: text/plain\r\n\r\n%s: %s\n", what, why);
    exit(0);
}

/* A JSON string literal of s. */
static void put_json(const char *s) {
    putchar('"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\') { putchar('\\'); putchar(*p); }
        else if (*p < 0x20) printf("\\u%04x", *p);
        else putchar(*p);
    }
    putchar('"');
}

int main(void) {
    MYSQL *db = mysql_init(NULL);
    if (!mysql_real_connect(db, NULL, getenv("BENCH_DB_USER"), getenv("BENCH_DB_PASSWORD"), getenv("BENCH_DB_NAME"), 0,
                            getenv("BENCH_DB_SOCKET"), 0))
        fail("connect", mysql_error(db));

    /* 1: every label and value. */
    MYSQL_STMT *st = mysql_stmt_init(db);
    const char *q1 = "SELECT label, value FROM information";
    if (mysql_stmt_prepare(st, q1, strlen(q1)) || mysql_stmt_execute(st)) fail("query 1", mysql_stmt_error(st));
    char label[192], value[65536];
    unsigned long label_len, value_len;
    MYSQL_BIND out[2];
    memset(out, 0, sizeof out);
    out[0].buffer_type = MYSQL_TYPE_STRING; out[0].buffer = label; out[0].buffer_length = sizeof label - 1; out[0].length = &label_len;
    out[1].buffer_type = MYSQL_TYPE_STRING; out[1].buffer = value; out[1].buffer_length = sizeof value - 1; out[1].length = &value_len;
    if (mysql_stmt_bind_result(st, out)) fail("bind 1", mysql_stmt_error(st));
    while (mysql_stmt_fetch(st) == 0) {
        label[label_len] = 0; value[value_len < sizeof value ? value_len : sizeof value - 1] = 0;
        for (size_t i = 0; i < NKEYS; i++)
            if (strcmp(label, keys[i]) == 0) { free(stored[i]); stored[i] = strdup(value); }
    }
    mysql_stmt_close(st);

    /* 2: the last known good version. */
    st = mysql_stmt_init(db);
    const char *q2 = "SELECT settings_version AS v FROM audit_log WHERE action = ? AND outcome = 'success' "
                     "AND settings_version IS NOT NULL GROUP BY settings_version ORDER BY settings_version DESC LIMIT ?";
    if (mysql_stmt_prepare(st, q2, strlen(q2))) fail("prepare 2", mysql_stmt_error(st));
    const char *action = "test.send";
    unsigned long action_len = strlen(action);
    long long limit = 1;
    MYSQL_BIND in[2];
    memset(in, 0, sizeof in);
    in[0].buffer_type = MYSQL_TYPE_STRING; in[0].buffer = (void *)action; in[0].length = &action_len;
    in[1].buffer_type = MYSQL_TYPE_LONGLONG; in[1].buffer = &limit;
    long long good = 0;
    my_bool good_null = 0;
    MYSQL_BIND res;
    memset(&res, 0, sizeof res);
    res.buffer_type = MYSQL_TYPE_LONGLONG; res.buffer = &good; res.is_null = &good_null;
    if (mysql_stmt_bind_param(st, in) || mysql_stmt_execute(st) || mysql_stmt_bind_result(st, &res))
        fail("query 2", mysql_stmt_error(st));
    int have_good = mysql_stmt_fetch(st) == 0 && !good_null;
    mysql_stmt_close(st);
    mysql_close(db);

    const char *version = stored[NKEYS - 1] ? stored[NKEYS - 1] : "0";
    printf("Status: 200 OK\r\nContent-Type: application/json; charset=utf-8\r\nCache-Control: no-store\r\n"
           "X-Content-Type-Options: nosniff\r\nETag: \"%s\"\r\n\r\n{\"status\":\"success\",\"data\":{", version);
    for (size_t i = 0; i < NKEYS; i++) {
        if (i) putchar(',');
        if (defaults[i] == NULL) {
            printf("\"%s_set\":%s", keys[i], stored[i] && *stored[i] ? "true" : "false");
        } else {
            printf("\"%s\":", keys[i]);
            put_json(stored[i] ? stored[i] : defaults[i]);
        }
    }
    if (have_good) printf(",\"last_known_good_version\":\"%lld\"}}", good);
    else printf(",\"last_known_good_version\":null}}");
    return 0;
}
