/* What one file's metadata costs a sync, by the way it is asked for (BENCHMARKS.md, Sync).
 *
 *   gcc -O2 -o /tmp/stat-cost bench/stat-cost.c && /tmp/stat-cost DIR [ROUNDS]
 *
 * DIR holds files 00000000..N-1 (N = the count of entries, made with `stat-cost DIR -make N`).
 * Each round times, over every file: statx on the absolute path (what s3fetch does today),
 * fstatat on the absolute path, fstatat relative to an open directory descriptor, statx
 * relative to it with only the size and mtime asked for, and getppid (a syscall's entry cost
 * alone). Rounds interleave the kinds, so a noisy machine shifts them alike; medians printed.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { KINDS = 5, MAX_ROUNDS = 64 };
static const char *names[KINDS] = {
    "statx, absolute path", "fstatat, absolute path", "fstatat, dir fd + name",
    "statx, dir fd + name, size|mtime", "getppid (syscall entry only)"};

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s DIR [ROUNDS] | %s DIR -make N\n", argv[0], argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    if (argc == 4 && strcmp(argv[2], "-make") == 0) {
        long n = atol(argv[3]);
        mkdir(dir, 0755);
        char path[4096];
        for (long i = 0; i < n; i++) {
            snprintf(path, sizeof path, "%s/%08ld", dir, i);
            int fd = open(path, O_CREAT | O_WRONLY, 0644);
            if (fd < 0 || write(fd, "x", 1) != 1) { perror(path); return 1; }
            close(fd);
        }
        return 0;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    if (rounds < 1 || rounds > MAX_ROUNDS) rounds = 7;
    long n = 0;
    char path[4096];
    for (;; n++) {
        snprintf(path, sizeof path, "%s/%08ld", dir, n);
        if (access(path, F_OK) != 0) break;
    }
    if (n == 0) { fprintf(stderr, "no files in %s\n", dir); return 1; }
    int dfd = open(dir, O_RDONLY | O_DIRECTORY);
    double t[KINDS][MAX_ROUNDS];
    struct stat st;
    struct statx sx;
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < KINDS; k++) {
            double start = now();
            for (long i = 0; i < n; i++) {
                char name[24];
                snprintf(name, sizeof name, "%08ld", i);
                snprintf(path, sizeof path, "%s/%s", dir, name);
                int rc = 0;
                switch (k) {
                case 0: rc = statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW, STATX_ALL, &sx); break;
                case 1: rc = fstatat(AT_FDCWD, path, &st, AT_SYMLINK_NOFOLLOW); break;
                case 2: rc = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW); break;
                case 3: rc = statx(dfd, name, AT_SYMLINK_NOFOLLOW, STATX_SIZE | STATX_MTIME, &sx); break;
                case 4: getppid(); break;
                }
                if (rc != 0) { perror(path); return 1; }
            }
            t[k][r] = now() - start;
        }
    }
    printf("%ld files, %d rounds (median; min-max)\n", n, rounds);
    for (int k = 0; k < KINDS; k++) {
        qsort(t[k], rounds, sizeof(double), cmp);
        printf("  %-34s %6.3f s  %5.2f us/file  (%.3f-%.3f)\n", names[k], t[k][rounds / 2],
               t[k][rounds / 2] / n * 1e6, t[k][0], t[k][rounds - 1]);
    }
    return 0;
}
