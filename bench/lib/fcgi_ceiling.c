/* The fastest FastCGI responder libfcgi allows: N threads, each accept → constant
 * JSON → finish, no parsing, no database, no logging. bench/run puts it behind the
 * same nginx to show the ceiling of any FastCGI responder on this machine.
 * usage: fcgi_ceiling SOCKET THREADS BODY_FILE */
#include <fcgiapp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

static int listen_fd;
static char *response;
static int response_len;

static void *worker(void *unused) {
    (void)unused;
    FCGX_Request request;
    FCGX_InitRequest(&request, listen_fd, 0);
    while (FCGX_Accept_r(&request) >= 0) {
        FCGX_PutStr(response, response_len, request.out);
        FCGX_Finish_r(&request);
    }
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s SOCKET THREADS BODY_FILE\n", argv[0]); return 2; }
    FILE *f = fopen(argv[3], "rb");
    if (!f) { perror(argv[3]); return 1; }
    char body[65536];
    size_t n = fread(body, 1, sizeof body, f);
    fclose(f);
    response = malloc(n + 256);
    response_len = snprintf(response, 256, "Status: 200 OK\r\nContent-Type: application/json; charset=utf-8\r\n"
                            "Cache-Control: no-store\r\n\r\n");
    memcpy(response + response_len, body, n);
    response_len += (int)n;
    FCGX_Init();
    unlink(argv[1]);
    signal(SIGTERM, SIG_DFL); /* libfcgi catches it; the bench stops us with it */
    listen_fd = FCGX_OpenSocket(argv[1], 1024);
    if (listen_fd < 0) { fprintf(stderr, "cannot listen on %s\n", argv[1]); return 1; }
    chmod(argv[1], 0666);
    int threads = atoi(argv[2]);
    pthread_t ids[64];
    for (int i = 0; i < threads && i < 64; i++) pthread_create(&ids[i], NULL, worker, NULL);
    for (int i = 0; i < threads && i < 64; i++) pthread_join(ids[i], NULL);
    return 0;
}
