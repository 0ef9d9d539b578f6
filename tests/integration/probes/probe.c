/* probe: makes one system call the seccomp policy cares about and prints
 * "NAME ok" or "NAME errno=N (ENAME)". Compiled by the security tests. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/personality.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

static const char *ename(int e) {
    switch (e) {
    case EPERM: return "EPERM";
    case ENOENT: return "ENOENT";
    case EBADF: return "EBADF";
    case EACCES: return "EACCES";
    case EFAULT: return "EFAULT";
    case EINVAL: return "EINVAL";
    case ENOSYS: return "ENOSYS";
    case EAFNOSUPPORT: return "EAFNOSUPPORT";
    case EMFILE: return "EMFILE";
    case ECONNREFUSED: return "ECONNREFUSED";
    case EADDRINUSE: return "EADDRINUSE";
    case ENETUNREACH: return "ENETUNREACH";
    case EIO: return "EIO";
    case ESRCH: return "ESRCH";
    case EAGAIN: return "EAGAIN";
    default: return "?";
    }
}

static int report(const char *name, long ret) {
    if (ret < 0)
        printf("%s errno=%d (%s)\n", name, errno, ename(errno));
    else
        printf("%s ok\n", name);
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: probe NAME [ARG]\n");
        return 2;
    }
    const char *n = argv[1];
    long r;
    if (!strcmp(n, "ptrace")) {
        /* PTRACE_ATTACH to a sibling given by pid. */
        pid_t pid = atoi(argv[2]);
        r = syscall(SYS_ptrace, 16 /* PTRACE_ATTACH */, pid, 0, 0);
        if (r == 0) {
            waitpid(pid, NULL, __WALL);
            syscall(SYS_ptrace, 17 /* PTRACE_DETACH */, pid, 0, 0);
        }
        return report(n, r);
    }
    /* The following pass arguments the kernel rejects with a telling
     * errno, so "allowed" shows the call reached the kernel. */
    if (!strcmp(n, "perf_event_open"))
        return report(n, syscall(SYS_perf_event_open, NULL, 0, -1, -1, 0)); /* EFAULT */
    if (!strcmp(n, "bpf"))
        return report(n, syscall(SYS_bpf, 0, NULL, 8)); /* EFAULT */
    if (!strcmp(n, "keyctl"))
        return report(n, syscall(SYS_keyctl, 0 /* GET_KEYRING_ID */, -3 /* SESSION */, 0));
    if (!strcmp(n, "add_key"))
        return report(n, syscall(SYS_add_key, NULL, NULL, NULL, 0, 0)); /* EFAULT */
    if (!strcmp(n, "userfaultfd"))
        return report(n, syscall(SYS_userfaultfd, O_CLOEXEC | 1 /* USER_MODE_ONLY */));
    if (!strcmp(n, "io_uring_setup"))
        return report(n, syscall(SYS_io_uring_setup, 1, NULL)); /* EFAULT */
    if (!strcmp(n, "open_by_handle_at"))
        return report(n, syscall(SYS_open_by_handle_at, -1, NULL, 0)); /* EBADF */
    if (!strcmp(n, "mount"))
        return report(n, syscall(SYS_mount, "none", "/nonexistent-target", "tmpfs", 0, NULL)); /* ENOENT */
    if (!strcmp(n, "fsopen"))
        return report(n, syscall(SYS_fsopen, "tmpfs", 0)); /* EPERM: no CAP_SYS_ADMIN */
    if (!strcmp(n, "move_mount"))
        return report(n, syscall(SYS_move_mount, -1, "", -1, "", 0)); /* EPERM or EBADF */
    if (!strcmp(n, "unshare_user"))
        return report(n, syscall(SYS_unshare, CLONE_NEWUSER));
    if (!strcmp(n, "clone3"))
        return report(n, syscall(SYS_clone3, NULL, 0)); /* EINVAL */
    if (!strcmp(n, "socket_packet"))
        return report(n, socket(AF_PACKET, SOCK_RAW, 0)); /* EPERM: no CAP_NET_RAW */
    if (!strcmp(n, "socket_unix"))
        return report(n, socket(AF_UNIX, SOCK_STREAM, 0));
    if (!strcmp(n, "personality")) {
        r = syscall(SYS_personality, READ_IMPLIES_EXEC);
        return report(n, r);
    }
    if (!strcmp(n, "tiocsetd")) {
        /* Sets the terminal's line discipline (to N_TTY, what it has). */
        int ldisc = 0;
        return report(n, ioctl(0, TIOCSETD, &ldisc));
    }
    if (!strcmp(n, "tiocsti")) {
        /* Pushes a line into the terminal on stdin. */
        const char *s = "echo INJ""ECTED\n";
        long ret = 0;
        for (const char *c = s; *c; c++) {
            ret = ioctl(0, TIOCSTI, c);
            if (ret < 0)
                break;
        }
        return report(n, ret);
    }
#if defined(__x86_64__)
    if (!strcmp(n, "i386")) {
        /* getpid through int 0x80 (i386 number 20). */
        long ret;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(20L) : "memory");
        if (ret < 0) {
            errno = -ret;
            ret = -1;
        }
        return report(n, ret);
    }
    if (!strcmp(n, "x32"))
        return report(n, syscall(0x40000000L | 39)); /* getpid with the x32 bit */
    /* i386 entry points to calls the policy tests by argument: socketcall
     * (its arguments in memory, below 4G for int 0x80), the direct i386
     * socket call, and fcntl64 (F_SETPIPE_SZ on a bad fd: EBADF). */
    if (!strcmp(n, "i386_socketcall") || !strcmp(n, "i386_socket") ||
        !strcmp(n, "i386_fcntl64")) {
        int fam = argc > 2 ? atoi(argv[2]) : AF_UNIX;
        unsigned *args = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
                              MAP_PRIVATE | MAP_ANONYMOUS | MAP_32BIT, -1, 0);
        if (args == MAP_FAILED)
            return report("mmap", -1);
        args[0] = fam;
        args[1] = SOCK_SEQPACKET;
        args[2] = 0;
        long nr, b, c, d = 0, ret;
        if (!strcmp(n, "i386_socketcall"))
            nr = 102, b = 1 /* SYS_SOCKET */, c = (long)args;
        else if (!strcmp(n, "i386_socket"))
            nr = 359, b = fam, c = SOCK_SEQPACKET;
        else
            nr = 221, b = -1, c = 1031 /* F_SETPIPE_SZ */;
        __asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(b), "c"(c), "d"(d) : "memory");
        if (ret < 0) {
            errno = -ret;
            ret = -1;
        } else if (nr != 221) {
            close(ret);
        }
        return report(n, ret);
    }
#else
    if (!strncmp(n, "i386", 4) || !strcmp(n, "x32")) {
        printf("%s not-x86_64\n", n);
        return 0;
    }
#endif
    if (!strcmp(n, "bind80")) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(80)};
        if (fd < 0)
            return report("socket", -1);
        return report(n, bind(fd, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(n, "connect")) {
        /* connect to 127.0.0.1:PORT; the network namespace's loopback is
         * brought up first (needs nothing: it is our own namespace). */
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[2])),
                                .sin_addr.s_addr = htonl(0x7f000001)};
        return report(n, connect(fd, (struct sockaddr *)&a, sizeof a));
    }
    if (!strcmp(n, "read")) {
        int fd = open(argv[2], O_RDONLY);
        char buf[64];
        if (fd < 0)
            return report(n, -1);
        return report(n, read(fd, buf, sizeof buf));
    }
    if (!strcmp(n, "nofile")) {
        /* Opens /dev/null until it fails; prints how many opened. */
        int count = 0;
        while (open("/dev/null", O_RDONLY) >= 0)
            count++;
        printf("nofile opened=%d errno=%s\n", count, ename(errno));
        return 0;
    }
    if (!strcmp(n, "forks")) {
        /* Forks up to argv[2] children that wait, stopping at the first
         * failure; prints how many started and why it stopped, holds them
         * for argv[3] seconds, then ends them. A fork bomb that counts. */
        int want = argc > 2 ? atoi(argv[2]) : 100, count = 0, err = 0;
        int hold = argc > 3 ? atoi(argv[3]) : 0;
        pid_t kids[100000];
        while (count < want && count < 100000) {
            pid_t p = fork();
            if (p < 0) {
                err = errno;
                break;
            }
            if (p == 0) {
                pause();
                _exit(0);
            }
            kids[count++] = p;
        }
        printf("forks started=%d errno=%s\n", count, err ? ename(err) : "0");
        fflush(stdout);
        sleep(hold);
        for (int i = 0; i < count; i++)
            kill(kids[i], SIGKILL);
        while (wait(NULL) > 0)
            ;
        return 0;
    }
    fprintf(stderr, "probe: unknown probe %s\n", n);
    return 2;
}
