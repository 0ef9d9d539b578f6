/* scmp_export: builds a filter with libseccomp from rules on stdin and
 * writes its BPF (seccomp_export_bpf) to stdout, for the differential test
 * of moksha's compiler. Input lines:
 *   default ACTION                    (first line)
 *   abi x86_64|x86|x32                (the rules that follow are for it)
 *   rule NAME ACTION N [ARG MASK DATUM]...   (N masked-equality tests, ANDed)
 * ACTION: allow | kill | log | trap | errno N. A rule libseccomp refuses, or
 * a name it does not know, is reported on stderr as "skip ABI NAME rc". */
#include <seccomp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t action(char **tok) {
    char *a = strtok_r(NULL, " \n", tok);
    if (!strcmp(a, "allow")) return SCMP_ACT_ALLOW;
    if (!strcmp(a, "kill")) return SCMP_ACT_KILL_PROCESS;
    if (!strcmp(a, "log")) return SCMP_ACT_LOG;
    if (!strcmp(a, "trap")) return SCMP_ACT_TRAP;
    return SCMP_ACT_ERRNO(atoi(strtok_r(NULL, " \n", tok)));
}

int main(void) {
    char line[4096], *tok, abi[16] = "x86_64";
    uint32_t def = SCMP_ACT_ALLOW;
    scmp_filter_ctx all = NULL, cur = NULL;
    while (fgets(line, sizeof line, stdin)) {
        char *w = strtok_r(line, " \n", &tok);
        if (!w) continue;
        if (!strcmp(w, "default")) {
            def = action(&tok);
        } else if (!strcmp(w, "abi")) {
            char *a = strtok_r(NULL, " \n", &tok);
            snprintf(abi, sizeof abi, "%s", a);
            uint32_t arch = !strcmp(a, "x86") ? SCMP_ARCH_X86
                            : !strcmp(a, "x32") ? SCMP_ARCH_X32 : SCMP_ARCH_X86_64;
            if (cur && seccomp_merge(all, cur)) return 3;
            cur = seccomp_init(def);
            if (!cur) return 3;
            if (arch != SCMP_ARCH_X86_64) {
                if (seccomp_arch_add(cur, arch) || seccomp_arch_remove(cur, SCMP_ARCH_X86_64))
                    return 3;
            }
            if (!all) all = cur, cur = NULL;
        } else if (!strcmp(w, "rule")) {
            scmp_filter_ctx ctx = cur ? cur : all;
            char *name = strtok_r(NULL, " \n", &tok);
            uint32_t act = action(&tok);
            unsigned n = atoi(strtok_r(NULL, " \n", &tok));
            struct scmp_arg_cmp cmp[6];
            for (unsigned i = 0; i < n && i < 6; i++) {
                cmp[i].arg = atoi(strtok_r(NULL, " \n", &tok));
                cmp[i].op = SCMP_CMP_MASKED_EQ;
                cmp[i].datum_a = strtoull(strtok_r(NULL, " \n", &tok), NULL, 0);
                cmp[i].datum_b = strtoull(strtok_r(NULL, " \n", &tok), NULL, 0);
            }
            int nr = seccomp_syscall_resolve_name(name);
            int rc = nr == __NR_SCMP_ERROR ? -1 : seccomp_rule_add_exact_array(ctx, act, nr, n, cmp);
            if (rc) fprintf(stderr, "skip %s %s %d\n", abi, name, rc);
        }
    }
    if (cur && seccomp_merge(all, cur)) return 3;
    return seccomp_export_bpf(all, 1) ? 4 : 0;
}
