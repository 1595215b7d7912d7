#!/usr/bin/env python3
"""What a TCP fault plugin costs, measured against a running faultgate.

    faultgate serve --api 127.0.0.1:8474 --no-plugin-cache --plugin A.wasm ...
    python3 measure_plugin.py --api 127.0.0.1:8474 TYPE [ATTRIBUTES_JSON] ...

For each toxic TYPE (loaded plugins or built-ins), against a loopback echo
server this script starts:
- attach: the mean time of POST /proxies/P/toxics over 20 attach+remove
  rounds (the API answers once the fault's instance is made);
- per call: 2000 echo round trips of 16 bytes through a proxy with the toxic
  on its upstream stream (one on-data call each) minus the same without a
  toxic, per round trip (the best of five interleaved runs each way);
- memory: the growth of faultgate's resident set (/proc/PID/status VmRSS)
  over 50 toxics of that type attached at once, per toxic.
Prints one line per type. Only loopback; every loop is bounded.
"""

import argparse
import http.client
import json
import socket
import threading
import time


def api(address, method, path, body=None):
    host, port = address.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.request(method, path, json.dumps(body) if body is not None else None)
    answer = conn.getresponse()
    data = answer.read()
    conn.close()
    if answer.status >= 300:
        raise SystemExit(f"{method} {path}: {answer.status} {data.decode()}")
    return json.loads(data) if data else None


def echo_server():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)

    def serve(conn):
        with conn:
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept():
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return listener.getsockname()


def round_trips(listen, count=2000):
    with socket.create_connection(listen, timeout=10) as conn:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        message = b"0123456789abcdef"
        started = time.perf_counter()
        for _ in range(count):
            conn.sendall(message)
            got = b""
            while len(got) < len(message):
                got += conn.recv(64)
        return (time.perf_counter() - started) / count


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit("no VmRSS")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--api", default="127.0.0.1:8474")
    parser.add_argument("--pid", type=int, required=True, help="faultgate's process id")
    parser.add_argument("toxics", nargs="+", help="TYPE or TYPE=ATTRIBUTES_JSON")
    args = parser.parse_args()
    upstream = echo_server()
    for number, spec in enumerate(args.toxics):
        kind, _, attrs = spec.partition("=")
        attributes = json.loads(attrs) if attrs else {}
        proxy = f"measure{number}"
        made = api(args.api, "POST", "/proxies",
                   {"name": proxy, "listen": "127.0.0.1:0", "upstream": f"{upstream[0]}:{upstream[1]}"})
        host, port = made["listen"].rsplit(":", 1)
        listen = (host, int(port))
        toxics = f"/proxies/{proxy}/toxics"
        toxic = {"name": "t", "type": kind, "stream": "upstream", "attributes": attributes}

        attach = []
        for _ in range(20):
            started = time.perf_counter()
            api(args.api, "POST", toxics, toxic)
            attach.append(time.perf_counter() - started)
            api(args.api, "DELETE", f"{toxics}/t")

        # Five rounds each way, interleaved, the best of each kept: the
        # machine's other work only ever adds time.
        round_trips(listen, 200)  # warm up
        bare, with_toxic = [], []
        for _ in range(5):
            bare.append(round_trips(listen))
            api(args.api, "POST", toxics, toxic)
            with_toxic.append(round_trips(listen))
            api(args.api, "DELETE", f"{toxics}/t")
        bare, with_toxic = min(bare), min(with_toxic)

        before = rss_kib(args.pid)
        for i in range(50):
            api(args.api, "POST", toxics, dict(toxic, name=f"m{i}"))
        after = rss_kib(args.pid)
        for i in range(50):
            api(args.api, "DELETE", f"{toxics}/m{i}")
        api(args.api, "DELETE", f"/proxies/{proxy}")
        print(f"{kind}: attach {sum(attach) / len(attach) * 1000:.2f} ms, "
              f"per call {(with_toxic - bare) * 1e6:.1f} us "
              f"(round trip {bare * 1e6:.0f} us bare), "
              f"memory {(after - before) / 50:.0f} KiB per toxic")


if __name__ == "__main__":
    main()
