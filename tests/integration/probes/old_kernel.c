/* Runs a command as on Linux 5.8, the oldest kernel moksha supports: the
 * new mount API (open_tree, move_mount, fsopen, fsconfig, fsmount, fspick,
 * mount_setattr, open_tree_attr; 5.2 to 5.12) and close_range (5.9) answer
 * ENOSYS, as they do where they do not exist. The suite runs the launch tests through it once
 * (MOKSHA_TEST_OLD_KERNEL=1 in scripts/test) so that moksha's classic
 * mount(2) fallback is what builds every root.
 *
 *   old_kernel [--5.5] PROGRAM [ARGS...]
 *
 * With --5.5, openat2 (5.6) answers ENOSYS too.
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
    int before_openat2 = argc > 1 && !strcmp(argv[1], "--5.5");
    if (before_openat2) {
        argv++;
        argc--;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: old_kernel [--5.5] PROGRAM [ARGS...]\n");
        return 2;
    }
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /* Other ABIs (i386 entry points a test makes) pass untouched. */
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        REFUSE(428), /* open_tree */
        REFUSE(429), /* move_mount */
        REFUSE(430), /* fsopen */
        REFUSE(431), /* fsconfig */
        REFUSE(432), /* fsmount */
        REFUSE(433), /* fspick */
        REFUSE(436), /* close_range */
        REFUSE(before_openat2 ? 437 : 428), /* openat2 */
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
