#!/usr/bin/env python3
"""Two or more moksha binaries against each other and bubblewrap, in
alternation (round-robin, so load changes hit every one alike), on the
strict workload (bench/workload.rhai running /bin/true). For measuring a
change: build the binary before and after it, then

    bench/compare.py /tmp/moksha-before target/x86_64-unknown-linux-gnu/release/moksha
    BENCH_ROOTLESS=1 bench/compare.py /tmp/moksha-before target/x86_64-unknown-linux-gnu/release/moksha

(cargo builds for the host tuple, .cargo/config.toml: `rustc -vV` names it.)

prints the median wall time of each, its ratio to bwrap's median, and the
median of the per-round ratios (each binary against bwrap in the same
round: what drift between rounds moves least). The order of the commands
rotates from round to round, so that none always runs first or right after
bwrap. BENCH_RUNS (default 300) rounds after 20 warm-up rounds; rootless runs
as uid 65534 through setpriv (the workload file must be readable by it).
BENCH_PROFILE=bench/secure.rhai measures the workload with moksha's default
seccomp filter and landlock instead (against the same bwrap line).
"""
import os
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WORKLOAD = os.path.abspath(os.environ.get("BENCH_PROFILE",
                                          os.path.join(REPO, "bench", "workload.rhai")))
BWRAP = ["bwrap", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
         "--unshare-net", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
         "--tmpfs", "/", "--ro-bind", "/usr", "/usr", "--ro-bind", "/etc", "/etc",
         "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
         "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
         "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "/bin/true"]


def main():
    binaries = sys.argv[1:]
    if not binaries:
        sys.exit(__doc__)
    rootless = os.environ.get("BENCH_ROOTLESS") == "1"
    pre = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"] if rootless else []
    commands = [pre + [b, "exec", WORKLOAD, "--", "/bin/true"] for b in binaries]
    commands.append(pre + BWRAP)
    names = binaries + ["bwrap"]
    runs = int(os.environ.get("BENCH_RUNS", "300"))
    times = [[] for _ in commands]
    for round_ in range(runs + 20):
        order = list(range(len(commands)))
        shift = round_ % len(order)
        for i in order[shift:] + order[:shift]:
            start = time.perf_counter()
            code = subprocess.call(commands[i], stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
            took = (time.perf_counter() - start) * 1000
            if code != 0:
                sys.exit(f"{names[i]} failed with status {code}")
            if round_ >= 20:
                times[i].append(took)
    bwrap = statistics.median(times[-1])
    who = "rootless (uid 65534)" if rootless else "root"
    print(f"{who}, {runs} rounds, medians (and the median of the per-round ratios):")
    for name, t in zip(names, times):
        m = statistics.median(t)
        per_round = statistics.median(a / b for a, b in zip(t, times[-1]))
        print(f"  {m:6.2f} ms  {m / bwrap:4.2f}x bwrap  ({per_round:4.2f}x)  {name}")


if __name__ == "__main__":
    main()
