/* Runs a command as on an older kernel: the system calls it lacks answer
 * ENOSYS, as they do where they do not exist.
 *
 *   old_kernel [--4.18] PROGRAM [ARGS...]
 *
 * By default, as on Linux 5.8: the new mount API (open_tree, move_mount,
 * fsopen, fsconfig, fsmount, fspick, mount_setattr, open_tree_attr; 5.2 to
 * 5.12) and close_range (5.9). With --4.18, as on RHEL 8's kernel, the
 * oldest moksha supports: every x86_64 call after rseq (334), which
 * takes openat2 (5.6), the pidfd calls (5.1 to 5.6), clone3 and landlock
 * with it. The suite runs the launch tests through it once
 * (MOKSHA_TEST_OLD_KERNEL in scripts/test) so that moksha's fallbacks
 * (classic mount(2), paths walked in user space, /proc instead of pidfds)
 * are what every launch uses.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

#define REFUSE(nr) BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (nr), 0, 1), \
                   BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS)

int main(int argc, char **argv) {
    int rhel8 = argc > 1 && !strcmp(argv[1], "--4.18");
    if (rhel8) {
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: old_kernel [--4.18] PROGRAM [ARGS...]\n");
        return 2;
    }
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /* Other ABIs (i386 entry points a test makes) pass untouched. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /* Everything after rseq, with --4.18 (else a jump that never takes). */
        BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, rhel8 ? 335 : 0xffffffff, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
        REFUSE(428), /* open_tree */
        REFUSE(429), /* move_mount */
        REFUSE(430), /* fsopen */
        REFUSE(431), /* fsconfig */
        REFUSE(432), /* fsmount */
        REFUSE(433), /* fspick */
        REFUSE(436), /* close_range */
        REFUSE(442), /* mount_setattr */
        REFUSE(467), /* open_tree_attr */
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {sizeof code / sizeof code[0], code};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog)) {
        perror("old_kernel: seccomp");
        return 126;
    }
    execvp(argv[1], argv + 1);
    perror("old_kernel: exec");
    return 127;
}
