#!/usr/bin/env bash
# Startup benchmark: moksha against bubblewrap, Firejail, unshare and plain
# /bin/true, as root and rootless, in alternation. See bench/startup.py for
# the knobs (BENCH_QUICK=1 for a quick look) and the README's "Performance".
#
#   cargo build --release && bench/startup.sh
#
# Needs: python3, a C compiler (cc, as for cargo), bwrap, unshare and setpriv
# (util-linux); firejail is optional. On Debian:
#   apt-get install -y bubblewrap firejail
set -euo pipefail
cd "$(dirname "$0")/.."

# cargo builds for the host tuple (.cargo/config.toml): target/<tuple>/release.
moksha=${MOKSHA:-target/$(rustc -vV | sed -n 's/^host: //p')/release/moksha}
if [[ ! -x $moksha ]]; then
    echo "bench: $moksha not found; building it (cargo build --release)" >&2
    cargo build --release
fi
for tool in python3 cc bwrap unshare setpriv; do
    command -v "$tool" >/dev/null || echo "bench: $tool not found; its rows will be missing or the run will fail" >&2
done
if [[ -n $(find src stdlib Cargo.toml -newer "$moksha" -print -quit 2>/dev/null) ]]; then
    echo "bench: note: sources are newer than $moksha; run cargo build --release to measure them" >&2
fi
# A function order that no longer matches the code shows here (see link/order).
python3 link/order --check "$moksha" >&2 || echo "bench: the function layout is off (above): these figures are not those of an ordered build" >&2
MOKSHA=$moksha exec python3 bench/startup.py "$@"
