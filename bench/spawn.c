/*
 * spawn: runs one command and reports what it cost, for bench/startup.py.
 *
 *   spawn CMD [ARGS...]      (CMD is looked up on PATH)
 *
 * Prints one line to stdout:
 *
 *   wall_ns user_us sys_us maxrss_kib status tree_ns
 *
 * wall_ns is from just before the spawn until the command itself has exited
 * (what a caller waits for); tree_ns until every process it left behind has
 * exited too. The command gets /dev/null as stdin and stdout; its stderr is
 * ours.
 *
 * This helper is a child subreaper: processes the command leaves behind
 * (bubblewrap's PID 1, for one, is not waited for by the bwrap that the
 * caller started) are reparented to it and reaped here, so the CPU time is
 * that of every process of the tree, whoever reaped it.
 *
 * Why a C helper and not Python's own fork: the kernel folds the pre-exec
 * memory of the process that execs the command into ru_maxrss, so a command
 * started from Python reports at least Python's resident size (~10 MB). This
 * helper is linked statically and small, so the peak RSS wait4() reports is
 * the largest of the command's process tree (the launcher, for a sandbox).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: spawn CMD [ARGS...]\n");
        return 2;
    }
    int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
    if (devnull < 0) {
        perror("spawn: /dev/null");
        return 2;
    }
    if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0) {
        perror("spawn: PR_SET_CHILD_SUBREAPER");
        return 2;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, devnull, 0);
    posix_spawn_file_actions_adddup2(&fa, devnull, 1);

    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid;
    int err = posix_spawnp(&pid, argv[1], &fa, NULL, argv + 1, environ);
    if (err) {
        fprintf(stderr, "spawn: %s: %s\n", argv[1], strerror(err));
        return 127;
    }
    int status, code = -1;
    long long user = 0, sys = 0;
    long maxrss = 0;
    struct timespec t1 = t0, t2;
    for (;;) {
        struct rusage ru;
        pid_t w = wait4(-1, &status, 0, &ru);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            break; /* ECHILD: the whole tree is gone */
        }
        user += (long long)ru.ru_utime.tv_sec * 1000000LL + ru.ru_utime.tv_usec;
        sys += (long long)ru.ru_stime.tv_sec * 1000000LL + ru.ru_stime.tv_usec;
        if (ru.ru_maxrss > maxrss)
            maxrss = ru.ru_maxrss;
        if (w == pid) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t2);
    long long wall = (long long)(t1.tv_sec - t0.tv_sec) * 1000000000LL + (t1.tv_nsec - t0.tv_nsec);
    long long tree = (long long)(t2.tv_sec - t0.tv_sec) * 1000000000LL + (t2.tv_nsec - t0.tv_nsec);
    printf("%lld %lld %lld %ld %d %lld\n", wall, user, sys, maxrss, code, tree);
    return 0;
}
