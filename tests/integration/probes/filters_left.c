/* filters_left: runs a command under seccomp filters that allow every call
 * and leave it only about N instructions of the kernel's budget for the
 * filters along a process (MAX_INSNS_PER_PATH, 32768: each filter counts
 * its length as the kernel converted it, and 4 more), as deep nesting in
 * other sandboxes would. A filter the command installs beyond that gets
 * ENOMEM. What filters this process already runs under (a container's)
 * are measured first, so N is what is left whatever they took.
 *
 *   filters_left N PROGRAM [ARGS...]
 */
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#define PATH_BUDGET 32768
#define MAX_FILTER 4096

static struct sock_filter code[MAX_FILTER];

/* A filter of `len` instructions: loads of the call's number, then allow. */
static int install(int len) {
    for (int i = 0; i < len - 1; i++)
        code[i] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, 0);
    code[len - 1] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = {.len = (unsigned short)len, .filter = code};
    return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0);
}

/* How many instructions of filters like these still fit here: a child
 * installs the largest it can, halving the size at each refusal, and
 * reports what it installed (each filter's length and 4). */
static int room(void) {
    int fds[2];
    if (pipe(fds))
        return -1;
    pid_t child = fork();
    if (child == 0) {
        int total = 0;
        for (int len = MAX_FILTER; len >= 1;) {
            if (install(len) == 0)
                total += len + 4;
            else
                len /= 2;
        }
        (void)!write(fds[1], &total, sizeof total);
        _exit(0);
    }
    int total = -1;
    close(fds[1]);
    if (child < 0 || read(fds[0], &total, sizeof total) != sizeof total)
        total = -1;
    waitpid(child, NULL, 0);
    return total;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: filters_left N PROGRAM [ARGS...]\n");
        return 2;
    }
    int left = atoi(argv[1]);
    if (left < 1 || left > PATH_BUDGET) {
        fprintf(stderr, "filters_left: N out of range\n");
        return 2;
    }
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)) {
        perror("filters_left: PR_SET_NO_NEW_PRIVS");
        return 2;
    }
    int free = room();
    if (free < 0) {
        perror("filters_left: measuring the room left");
        return 2;
    }
    /* Whole filters of the largest size while more than one is needed,
     * then one that leaves `left`. */
    int to_use = free - left;
    while (to_use > 0) {
        int len = to_use - 4 > MAX_FILTER ? MAX_FILTER : to_use - 4;
        if (to_use - (len + 4) > 0 && to_use - (len + 4) < 5)
            len -= 5; /* the last one needs room for at least 1 instruction */
        if (len < 1 || install(len)) {
            perror("filters_left: prctl(PR_SET_SECCOMP)");
            return 2;
        }
        to_use -= len + 4;
    }
    execvp(argv[2], argv + 2);
    perror("filters_left: execvp");
    return 127;
}
