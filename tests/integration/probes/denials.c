/* denials: makes the calls trace mode explains and prints what each got,
 * "NAME ok" or "NAME errno=N". Run with and without --trace, its output
 * must be the same. Arguments: [keyctl] [fsopen] [getcpu] [open PATH]
 * [write PATH] [connect IP PORT] [sleep MS], each repeatable. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long ret) {
    if (ret < 0)
        printf("%s errno=%d\n", name, errno);
    else
        printf("%s ok\n", name);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i++) {
        const char *n = argv[i];
        if (!strcmp(n, "keyctl")) {
            report(n, syscall(SYS_keyctl, 0, 0, 0, 0, 0));
        } else if (!strcmp(n, "fsopen")) {
            report(n, syscall(SYS_fsopen, "tmpfs", 0));
        } else if (!strcmp(n, "getcpu")) {
            unsigned cpu;
            report(n, syscall(SYS_getcpu, &cpu, NULL, NULL));
        } else if (!strcmp(n, "open") && i + 1 < argc) {
            int fd = open(argv[++i], O_RDONLY);
            report(n, fd);
            if (fd >= 0)
                close(fd);
        } else if (!strcmp(n, "write") && i + 1 < argc) {
            int fd = open(argv[++i], O_WRONLY | O_CREAT, 0644);
            report(n, fd);
            if (fd >= 0)
                close(fd);
        } else if (!strcmp(n, "connect") && i + 2 < argc) {
            struct sockaddr_in sa = {0};
            sa.sin_family = AF_INET;
            sa.sin_port = htons(atoi(argv[i + 2]));
            inet_pton(AF_INET, argv[i + 1], &sa.sin_addr);
            i += 2;
            int s = socket(AF_INET, SOCK_STREAM, 0);
            report(n, connect(s, (struct sockaddr *)&sa, sizeof sa));
            close(s);
        } else if (!strcmp(n, "sleep") && i + 1 < argc) {
            usleep(atoi(argv[++i]) * 1000);
        } else {
            fprintf(stderr, "denials: unknown %s\n", n);
            return 2;
        }
    }
    fflush(stdout);
    return 0;
}
