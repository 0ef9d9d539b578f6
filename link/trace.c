// Which code of the moksha binary a command runs: single-steps the command
// and every process it forks that runs that binary, and prints the address
// of each instruction the first time it runs, in that order, tagged with
// the phase its process was in: 0 before the process dropped the binary's
// code (sys::shed_idle_memory's madvise(MADV_DONTNEED) of a range of a
// read-only segment of the binary; not the relocated constants its
// sys::relro pass drops before that, which are in a writable one), 1
// after. For each process that dropped its code it also prints
// "wait PID 0|1": 1 if, after the drop, it made a system call that blocked
// for over a second (its wait for the program): 0 means the traced
// program ended before the process got to its wait, so the trace lacks
// the wait's code. (Offsets are from the image's start, which is vaddr 0
// in moksha's static PIE, as the segments' addresses are.) link/order turns all this into link/order.txt, the
// linker's symbol order. A development tool: nothing ships it.
//
//   cc -O2 -o trace link/trace.c
//   ./trace BINARY OUT -- COMMAND...   (COMMAND runs BINARY somewhere)
//
// Processes that exec another program are let go at the exec.
#define _GNU_SOURCE
#include <elf.h>
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/user.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_PROCS 256
#define MADVISE 28
#define DONTNEED 4

struct proc {
    pid_t pid;
    uintptr_t base, end; // the binary's image in this process; end 0: none
    int phase;
    int started;    // its first stop (SIGSTOP) was seen
    int shed;       // it dropped the binary's code itself (not inherited)
    int waited;     // a system call of its blocked for over a second after
    double resumed; // when it was last let run (monotonic seconds)
    uintptr_t at;   // the instruction it was let run at
};

// The binary's read-only PT_LOAD segments, as offsets from its load
// address: an madvise(DONTNEED) in one of them is the code being dropped.
#define MAX_SEGMENTS 16
static struct { uintptr_t lo, hi; } readonly[MAX_SEGMENTS];
static int nreadonly;

static struct proc procs[MAX_PROCS];
static ino_t inode;
static uintptr_t span;            // bytes of the image the bitmaps cover (record checks)
static uint8_t *seen[2];          // one bit per byte offset, per phase
static FILE *out;

static struct proc *find(pid_t pid, int create) {
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i].pid == pid) return &procs[i];
    if (!create) return NULL;
    for (int i = 0; i < MAX_PROCS; i++)
        if (procs[i].pid == 0) {
            procs[i] = (struct proc){.pid = pid};
            return &procs[i];
        }
    fprintf(stderr, "trace: more than %d processes\n", MAX_PROCS);
    exit(2);
}

// The binary's mappings in `pid`, found by inode: a path in
// /proc/PID/maps is relative to the reader's root, which a process in
// another mount namespace does not share.
static void image(struct proc *p) {
    char path[64], line[4096];
    snprintf(path, sizeof path, "/proc/%d/maps", p->pid);
    FILE *f = fopen(path, "r");
    p->base = p->end = 0;
    if (!f) return;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi, off, ino;
        // The inode alone (the device skipped): the device maps shows can
        // differ from stat's (btrfs subvolumes, overlayfs before 6.8).
        if (sscanf(line, "%lx-%lx %*s %lx %*s %lu", &lo, &hi, &off, &ino) != 4) continue;
        if (ino != inode) continue;
        if (off == 0 && (p->base == 0 || lo < p->base)) p->base = lo;
        if (hi > p->end) p->end = hi;
    }
    fclose(f);
}

static void record(struct proc *p, uintptr_t rip) {
    if (rip < p->base || rip >= p->end) return;
    uintptr_t off = rip - p->base;
    if (off >= span) return;
    uint8_t *bits = seen[p->phase];
    if (bits[off >> 3] & (1u << (off & 7))) return;
    bits[off >> 3] |= 1u << (off & 7);
    fprintf(out, "%d %lx\n", p->phase, (unsigned long)off);
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

// Reads the read-only PT_LOAD segments of the ELF file at `path`.
static int segments(const char *path) {
    FILE *f = fopen(path, "rb");
    Elf64_Ehdr eh;
    if (!f || fread(&eh, sizeof eh, 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 ||
        eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_phentsize != sizeof(Elf64_Phdr)) {
        if (f) fclose(f);
        return -1;
    }
    for (int i = 0; i < eh.e_phnum; i++) {
        Elf64_Phdr ph;
        if (fseek(f, (long)(eh.e_phoff + (uint64_t)i * eh.e_phentsize), SEEK_SET) != 0 ||
            fread(&ph, sizeof ph, 1, f) != 1)
            break;
        if (ph.p_type == PT_LOAD && !(ph.p_flags & PF_W) && nreadonly < MAX_SEGMENTS) {
            readonly[nreadonly].lo = ph.p_vaddr;
            readonly[nreadonly].hi = ph.p_vaddr + ph.p_memsz;
            nreadonly++;
        }
    }
    fclose(f);
    return nreadonly > 0 ? 0 : -1;
}

static int in_readonly(uintptr_t off) {
    for (int i = 0; i < nreadonly; i++)
        if (off >= readonly[i].lo && off < readonly[i].hi) return 1;
    return 0;
}

// The summary line of a process that dropped its code, once it is gone
// or runs another program.
static void gone(struct proc *p) {
    if (p->shed) fprintf(out, "wait %d %d\n", p->pid, p->waited);
    p->shed = p->waited = 0;
}

static long reg(pid_t pid, size_t offset) {
    errno = 0;
    return ptrace(PTRACE_PEEKUSER, pid, (void *)offset, 0);
}

int main(int argc, char **argv) {
    if (argc < 5 || strcmp(argv[3], "--") != 0) {
        fprintf(stderr, "usage: trace BINARY OUT -- COMMAND...\n");
        return 2;
    }
    struct stat st;
    if (stat(argv[1], &st) != 0) {
        perror(argv[1]);
        return 2;
    }
    inode = st.st_ino;
    if (segments(argv[1]) != 0) {
        fprintf(stderr, "trace: %s: no read-only PT_LOAD segment found (not an ELF64 file?)\n",
                argv[1]);
        return 2;
    }
    span = (uintptr_t)st.st_size + (64u << 20); // the image is larger than the file by its bss
    seen[0] = calloc(span / 8 + 1, 1);
    seen[1] = calloc(span / 8 + 1, 1);
    out = fopen(argv[2], "w");
    if (!out || !seen[0] || !seen[1]) {
        perror("trace");
        return 2;
    }
    pid_t child = fork();
    if (child == 0) {
        ptrace(PTRACE_TRACEME, 0, 0, 0);
        raise(SIGSTOP);
        execvp(argv[4], argv + 4);
        perror(argv[4]);
        _exit(127);
    }
    int status, code = 0;
    waitpid(child, &status, 0);
    ptrace(PTRACE_SETOPTIONS, child, 0,
           PTRACE_O_TRACEFORK | PTRACE_O_TRACEVFORK | PTRACE_O_TRACECLONE |
               PTRACE_O_TRACEEXEC | PTRACE_O_EXITKILL);
    find(child, 1);
    ptrace(PTRACE_SINGLESTEP, child, 0, 0);
    int live = 1;
    while (live > 0) {
        pid_t pid = waitpid(-1, &status, __WALL);
        if (pid < 0) break;
        if (WIFEXITED(status) || WIFSIGNALED(status)) {
            if (pid == child) code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
            struct proc *ended = find(pid, 0); // none: let go of at an exec
            if (ended) {
                gone(ended);
                ended->pid = 0;
                live--;
            }
            continue;
        }
        struct proc *p = find(pid, 1);
        // A step over a system call that took over a second: it blocked.
        if (p->shed && p->at && now() - p->resumed > 1.0 &&
            (ptrace(PTRACE_PEEKTEXT, pid, (void *)p->at, 0) & 0xffff) == 0x050f)
            p->waited = 1;
        int sig = WSTOPSIG(status), event = status >> 16, deliver = 0;
        if (event == PTRACE_EVENT_FORK || event == PTRACE_EVENT_VFORK ||
            event == PTRACE_EVENT_CLONE) {
            unsigned long newpid;
            ptrace(PTRACE_GETEVENTMSG, pid, 0, &newpid);
            struct proc *c = find((pid_t)newpid, 1);
            c->base = p->base;
            c->end = p->end;
            c->phase = p->phase;
            live++;
        } else if (event == PTRACE_EVENT_EXEC) {
            int had = p->end != 0;
            gone(p);
            image(p);
            p->phase = 0;
            if (p->end == 0 && had) { // the binary ran another program: let it go
                ptrace(PTRACE_DETACH, pid, 0, 0);
                p->pid = 0;
                live--;
                continue;
            }
        } else if (sig == SIGSTOP && !p->started && pid != child) {
            if (p->end == 0) image(p); // its first stop came before its parent's event
        } else if (sig != SIGTRAP) {
            deliver = sig;
        }
        p->started = 1;
        long rip = reg(pid, offsetof(struct user_regs_struct, rip));
        p->at = errno == 0 ? (uintptr_t)rip : 0;
        if (errno == 0) {
            record(p, (uintptr_t)rip);
            // The syscall instruction of madvise(a range of a read-only
            // segment of the binary, .., MADV_DONTNEED): what runs from
            // here on runs after the shed.
            if (p->phase == 0 && reg(pid, offsetof(struct user_regs_struct, rax)) == MADVISE) {
                long insn = ptrace(PTRACE_PEEKTEXT, pid, (void *)rip, 0);
                uintptr_t addr = (uintptr_t)reg(pid, offsetof(struct user_regs_struct, rdi));
                if ((insn & 0xffff) == 0x050f && reg(pid, offsetof(struct user_regs_struct, rdx)) == DONTNEED &&
                    addr >= p->base && addr < p->end && in_readonly(addr - p->base))
                    p->phase = p->shed = 1;
            }
        }
        p->resumed = now();
        ptrace(PTRACE_SINGLESTEP, pid, 0, deliver);
    }
    fclose(out);
    return code;
}
