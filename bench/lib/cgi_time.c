/* Runs one CGI program once, as a web server would: its environment is ours, stdin
 * from a file, stdout to a file; prints "wall_us maxrss_kib status cpu_us" on stderr
 * (cpu: the child's user + system time).
 * Wall time is fork to reaped; peak RSS is the child's ru_maxrss from wait4. It is a
 * small C program on purpose: Linux counts the pre-exec image of the forked child
 * in ru_maxrss, so a big parent (Python) would inflate every figure.
 * usage: cgi_time STDIN_FILE STDOUT_FILE PROGRAM [ARG…] */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc < 4) { fprintf(stderr, "usage: %s STDIN_FILE STDOUT_FILE PROGRAM [ARG...]\n", argv[0]); return 2; }
    int in = open(argv[1], O_RDONLY), out = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (in < 0 || out < 0) { perror("open"); return 2; }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(in, 0); dup2(out, 1);
        close(in); close(out);
        execv(argv[3], argv + 3);
        _exit(127);
    }
    int status;
    struct rusage usage;
    if (pid < 0 || wait4(pid, &status, 0, &usage) != pid) { perror("fork/wait4"); return 2; }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long wall = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    long cpu = (usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000L + usage.ru_utime.tv_usec + usage.ru_stime.tv_usec;
    fprintf(stderr, "%ld %ld %d %ld\n", wall, usage.ru_maxrss, WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), cpu);
    return 0;
}
