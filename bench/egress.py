#!/usr/bin/env python3
"""The cost of a connection through moksha's egress proxy, on loopback.

    cargo build --release && python3 bench/egress.py [N]

A tiny HTTP server on the host's 127.0.0.1; one client makes N sequential
connections with one request each, twice: on the host, straight to the
server, and in a sandbox with s.egress, through the proxy (HTTP CONNECT,
then the same request in the tunnel). The difference of the means is what
the proxy adds per connection (its decision, the connection out, the
relay, and the CONNECT round trip itself); medians are printed beside the
means, as a busy machine's scheduling shows in the means. The same client code runs both ways, so Python's own cost cancels.
Set MOKSHA to the binary to measure (default cargo's, target/<host tuple>/release/moksha).
"""
import os
import socket
import subprocess
import sys
import tempfile
import threading

N = int(sys.argv[1]) if len(sys.argv) > 1 else 500
# cargo builds for the host tuple (.cargo/config.toml): target/<tuple>/release.
MOKSHA = os.environ.get("MOKSHA") or os.path.join(
    "target", subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True)
    .stdout.split("host: ")[1].split()[0], "release", "moksha")

CLIENT = r'''
import socket, sys, time
host, port, n, proxy = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "proxy"
req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
def one():
    if proxy:
        c = socket.create_connection(("127.0.0.1", 3128))
        c.sendall(("CONNECT %s:%d HTTP/1.1\r\n\r\n" % (host, port)).encode())
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += c.recv(4096)
        assert head.startswith(b"HTTP/1.1 200"), head
    else:
        c = socket.create_connection((host, port))
    c.sendall(req)
    got = b""
    while True:
        d = c.recv(4096)
        if not d:
            break
        got += d
    assert got.endswith(b"ok"), got
    c.close()
for _ in range(20):
    one()
times = []
for _ in range(n):
    t = time.perf_counter()
    one()
    times.append(time.perf_counter() - t)
times.sort()
print(times[len(times) // 2] * 1e6, sum(times) / n * 1e6)
'''


def serve(listener):
    while True:
        c, _ = listener.accept()
        c.recv(4096)
        c.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        c.close()


def main():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    threading.Thread(target=serve, args=(listener,), daemon=True).start()
    direct = [float(x) for x in subprocess.check_output(
        [sys.executable, "-c", CLIENT, "127.0.0.1", str(port), str(N), "direct"]).split()]
    with tempfile.TemporaryDirectory() as d:
        os.chmod(d, 0o755)
        prof = os.path.join(d, "bench.rhai")
        with open(prof, "w") as f:
            f.write(f'''import "base" as base;
let s = sandbox("egress-bench");
base::minimal(s);
s.egress(#{{ allow: ["bench.test", "127.0.0.1"], ports: [{port}],
            resolve: #{{ "bench.test": "127.0.0.1" }} }});
s.exec(ARGS);
''')
        os.chmod(prof, 0o644)
        proxied = [float(x) for x in subprocess.check_output(
            [MOKSHA, "exec", prof, "--", "python3", "-c", CLIENT, "bench.test", str(port),
             str(N), "proxy"]).split()]
    print(f"connections: {N} sequential, one request each, loopback; us per connection")
    print(f"{'':22} {'median':>8} {'mean':>8}")
    print(f"{'direct':22} {direct[0]:8.1f} {direct[1]:8.1f}")
    print(f"{'through the proxy':22} {proxied[0]:8.1f} {proxied[1]:8.1f}")
    print(f"{'added by the proxy':22} {proxied[0] - direct[0]:8.1f} {proxied[1] - direct[1]:8.1f}")


if __name__ == "__main__":
    main()
