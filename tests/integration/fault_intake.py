"""fault_intake.py - a Datadog-compatible test intake that misbehaves on purpose.

Python 3 standard library only (zstd bodies are decoded with the `zstd` CLI).
Threaded HTTP(S) server; every request is decoded and recorded:
  {"t": unix time, "path", "method", "headers": {...}, "encoding", "size",
   "body": decoded JSON / protobuf as dicts (or None), "error": decode error,
   "action": what was answered}
Responses follow a script: a list of actions consumed one per request
(per path when `per_path` is given), then `default`. An action is a dict:
  status (int, default 202), body (str), delay (s before answering),
  retry_after (header value), reset (True: close the connection, no answer),
  slow_body (bytes/s trickle of `body_size` bytes), huge_body (bytes).

In-process use (tests):  with FaultIntake() as fi: ... fi.url, fi.requests()
Stand-alone:  python3 fault_intake.py --port 0 [--tls] [--record out.json]
              GET /_requests returns the records, POST /_script sets the script.
"""
import argparse
import gzip
import http.server
import json
import os
import socket
import socketserver
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import zlib

# ---- minimal protobuf decoding (the messages of agent_payload.proto) ----


def _varint(b, i):
    shift = v = 0
    while True:
        c = b[i]
        i += 1
        v |= (c & 0x7F) << shift
        if c < 0x80:
            return v, i
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def pb_fields(b):
    """Yields (field number, wire type, value) of one message."""
    i = 0
    while i < len(b):
        key, i = _varint(b, i)
        f, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint(b, i)
        elif wt == 1:
            v = b[i:i + 8]
            i += 8
        elif wt == 2:
            n, i = _varint(b, i)
            v = b[i:i + n]
            if len(v) != n:
                raise ValueError("truncated field")
            i += n
        elif wt == 5:
            v = b[i:i + 4]
            i += 4
        else:
            raise ValueError(f"wire type {wt}")
        yield f, wt, v


def _dbl(v):
    return struct.unpack("<d", v)[0]


def _i64(v):
    return v - (1 << 64) if v >= 1 << 63 else v


def _zigzag(v):
    return (v >> 1) ^ -(v & 1)


def _packed(v, wt, conv):
    if wt == 2:
        out, i = [], 0
        while i < len(v):
            x, i = _varint(v, i)
            out.append(conv(x))
        return out
    return [conv(v)]


def decode_metric_payload(b):
    series = []
    for f, _, v in pb_fields(b):
        if f != 1:
            continue
        s = {"resources": [], "tags": [], "points": [], "type": 0, "interval": 0, "metric": ""}
        for g, _, w in pb_fields(v):
            if g == 1:
                r = {k: "" for k in ("type", "name")}
                for h, _, x in pb_fields(w):
                    r["type" if h == 1 else "name"] = x.decode()
                s["resources"].append(r)
            elif g == 2:
                s["metric"] = w.decode()
            elif g == 3:
                s["tags"].append(w.decode())
            elif g == 4:
                p = {"value": 0.0, "timestamp": 0}
                for h, _, x in pb_fields(w):
                    if h == 1:
                        p["value"] = _dbl(x)
                    elif h == 2:
                        p["timestamp"] = _i64(x)
                s["points"].append(p)
            elif g == 5:
                s["type"] = w
            elif g == 8:
                s["interval"] = _i64(w)
        series.append(s)
    return {"series": series}


def decode_sketch_payload(b):
    sketches = []
    for f, _, v in pb_fields(b):
        if f != 1:
            continue
        s = {"metric": "", "host": "", "tags": [], "dogsketches": []}
        for g, _, w in pb_fields(v):
            if g == 1:
                s["metric"] = w.decode()
            elif g == 2:
                s["host"] = w.decode()
            elif g == 4:
                s["tags"].append(w.decode())
            elif g == 7:
                d = {"ts": 0, "cnt": 0, "min": 0.0, "max": 0.0, "avg": 0.0, "sum": 0.0, "k": [], "n": []}
                for h, wt, x in pb_fields(w):
                    if h in (1, 2):
                        d["ts" if h == 1 else "cnt"] = _i64(x)
                    elif 3 <= h <= 6:
                        d[("min", "max", "avg", "sum")[h - 3]] = _dbl(x)
                    elif h == 7:
                        d["k"] += _packed(x, wt, _zigzag)
                    elif h == 8:
                        d["n"] += _packed(x, wt, lambda a: a)
                s["dogsketches"].append(d)
        sketches.append(s)
    return {"sketches": sketches}


def snappy_decompress(b):
    """Snappy's block format (what Prometheus remote write sends)."""
    n, i = _varint(b, 0)
    out = bytearray()
    while i < len(b):
        tag = b[i]
        i += 1
        kind = tag & 3
        if kind == 0:  # literal
            ln = tag >> 2
            if ln >= 60:
                nb = ln - 59
                ln = int.from_bytes(b[i:i + nb], "little")
                i += nb
            ln += 1
            out += b[i:i + ln]
            i += ln
            continue
        if kind == 1:
            ln = ((tag >> 2) & 7) + 4
            off = ((tag >> 5) << 8) | b[i]
            i += 1
        elif kind == 2:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 2], "little")
            i += 2
        else:
            ln = (tag >> 2) + 1
            off = int.from_bytes(b[i:i + 4], "little")
            i += 4
        if off == 0 or off > len(out):
            raise ValueError("snappy: bad copy offset")
        for _ in range(ln):
            out.append(out[-off])
    if len(out) != n:
        raise ValueError(f"snappy: {len(out)} bytes, header says {n}")
    return bytes(out)


def decode_write_request(b):
    """Prometheus remote write WriteRequest ->
    {"timeseries": [{"labels": [[name, value], ...], "samples": [[ts_ms, value], ...]}]}"""
    out = []
    for f, wt, v in pb_fields(b):
        if f != 1 or wt != 2:
            continue
        ts = {"labels": [], "samples": []}
        for g, wt2, x in pb_fields(v):
            if g == 1:
                lab = {h: y.decode() for h, _, y in pb_fields(x)}
                ts["labels"].append([lab.get(1, ""), lab.get(2, "")])
            elif g == 2:
                smp = {h: y for h, _, y in pb_fields(x)}
                ts["samples"].append([_i64(smp.get(2, 0)), _dbl(smp[1]) if 1 in smp else 0.0])
        out.append(ts)
    return {"timeseries": out}


def rw_points(rec):
    """(name, frozenset(labels without __name__), ts_ms, value) of a remote write request."""
    out = []
    for t in (rec.get("body") or {}).get("timeseries", []):
        lab = dict(t["labels"])
        name = lab.pop("__name__", "")
        for ts, v in t["samples"]:
            out.append((name, frozenset(lab.items()), ts, v))
    return out


def decompress(encoding, raw):
    if not encoding or encoding == "identity":
        return raw
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "snappy":
        return snappy_decompress(raw)
    if encoding == "zstd":
        r = subprocess.run(["zstd", "-d", "-c", "-q"], input=raw, capture_output=True, check=True)
        return r.stdout
    raise ValueError(f"unknown Content-Encoding {encoding}")


def decode_body(path, ctype, encoding, raw):
    data = decompress(encoding, raw)
    if encoding == "snappy":
        return decode_write_request(data)
    if ctype.startswith("application/x-protobuf"):
        if path.endswith("/sketches"):
            return decode_sketch_payload(data)
        return decode_metric_payload(data)
    if not data:
        return None
    return json.loads(data)


# ---- self-signed certificates (openssl CLI) ----


def make_cert(dirpath, cn="localhost"):
    """Creates a self-signed cert for 127.0.0.1/localhost; returns (cert, key)."""
    cert, key = os.path.join(dirpath, "cert.pem"), os.path.join(dirpath, "key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                    "-out", cert, "-days", "2", "-subj", f"/CN={cn}",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    return cert, key


# ---- the server ----


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def _read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n else b""

    def do_GET(self):
        fi = self.server.intake
        if self.path == "/_requests":
            body = json.dumps(fi.requests()).encode()
            self._answer({"status": 200, "body": body})
            return
        self._handle(b"")

    def do_POST(self):
        raw = self._read_body()
        if self.path == "/_script":
            self.server.intake.set_script(**json.loads(raw))
            self._answer({"status": 200})
            return
        self._handle(raw)

    do_PUT = do_POST

    def _handle(self, raw):
        fi = self.server.intake
        rec = {"t": time.time(), "path": self.path, "method": self.command,
               "headers": {k: v for k, v in self.headers.items()},
               "encoding": self.headers.get("Content-Encoding", ""), "size": len(raw),
               "body": None, "error": None}
        try:
            rec["body"] = decode_body(self.path, self.headers.get("Content-Type", ""),
                                      rec["encoding"], raw)
        except Exception as e:  # noqa: BLE001 - recorded for the test to assert on
            rec["error"] = f"{type(e).__name__}: {e}"
        action = fi.next_action(self.path, rec["body"])
        rec["action"] = action
        fi.record(rec)
        self._answer(action)

    def _answer(self, a):
        if a.get("delay"):
            time.sleep(a["delay"])
        if a.get("reset"):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            return
        body = a.get("body", b'{"status":"ok"}' if a.get("status", 202) < 300 else b'{"errors":["scripted"]}')
        if isinstance(body, str):
            body = body.encode()
        size = a.get("huge_body") or a.get("body_size") or len(body)
        self.send_response(a.get("status", 202))
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(size))
        if a.get("retry_after") is not None:
            self.send_header("Retry-After", str(a["retry_after"]))
        self.end_headers()
        try:
            if a.get("huge_body"):
                chunk = b"x" * 65536
                left = size
                while left > 0:
                    self.wfile.write(chunk[:min(left, len(chunk))])
                    left -= len(chunk)
            elif a.get("slow_body"):
                for i in range(size):
                    self.wfile.write(b"y")
                    self.wfile.flush()
                    time.sleep(1.0 / a["slow_body"])
            else:
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            self.close_connection = True


class _Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class FaultIntake:
    def __init__(self, port=0, tls=False, cert=None, record_path=None):
        self._lock = threading.Lock()
        self._records = []
        self._script = []
        self._per_path = {}
        self._per_metric = {}
        self._default = {"status": 202}
        self.record_path = record_path
        self.tmp = tempfile.mkdtemp(prefix="ddma-intake-")
        self.server = _Server(("127.0.0.1", port), _Handler)
        self.server.intake = self
        self.cert = None
        if tls:
            self.cert, key = cert or make_cert(self.tmp)
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(self.cert, key)
            self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def start(self):
        self.thread.start()
        return self

    def stop(self):
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *a):
        self.stop()

    def set_script(self, script=None, default=None, per_path=None, per_metric=None):
        """script: actions for the next requests; per_path: {path: [actions]};
        per_metric: {metric name: [actions]} for series requests whose first
        point has that name (with serializer_max_series_points_per_payload: 1,
        one script per metric)."""
        with self._lock:
            self._script = list(script or [])
            self._per_path = {k: list(v) for k, v in (per_path or {}).items()}
            self._per_metric = {k: list(v) for k, v in (per_metric or {}).items()}
            if default is not None:
                self._default = dict(default)

    def next_action(self, path, body=None):
        with self._lock:
            pts = series_points({"body": body}) if isinstance(body, dict) else []
            pts = pts or (rw_points({"body": body}) if isinstance(body, dict) else [])
            if pts and self._per_metric.get(pts[0][0]):
                return dict(self._per_metric[pts[0][0]].pop(0))
            q = self._per_path.get(path)
            if q:
                return dict(q.pop(0))
            if self._script:
                return dict(self._script.pop(0))
            return dict(self._default)

    def record(self, rec):
        with self._lock:
            self._records.append(rec)
            if self.record_path:
                with open(self.record_path, "w") as f:
                    json.dump(self._records, f)

    def requests(self, path=None):
        with self._lock:
            return [dict(r) for r in self._records if path is None or r["path"] == path]

    def clear(self):
        with self._lock:
            self._records = []


def series_points(rec):
    """(metric, host, tuple(tags), ts, value) of every point of a series request."""
    out = []
    body = rec.get("body") or {}
    for s in body.get("series", []):
        if isinstance(s.get("points", [None])[0], list) or not s.get("points"):
            for ts, v in s.get("points", []):
                out.append((s["metric"], s.get("host", ""), tuple(s.get("tags", [])), ts, v))
        else:
            host = next((r["name"] for r in s.get("resources", []) if r["type"] == "host"), "")
            for p in s["points"]:
                out.append((s["metric"], host, tuple(s.get("tags", [])), p["timestamp"], p["value"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--tls", action="store_true")
    ap.add_argument("--record", help="write every request to this JSON file")
    ap.add_argument("--script", default="[]", help="JSON list of actions")
    ap.add_argument("--default", default='{"status": 202}', help="JSON action after the script")
    a = ap.parse_args()
    fi = FaultIntake(port=a.port, tls=a.tls, record_path=a.record)
    fi.set_script(json.loads(a.script), json.loads(a.default))
    print(json.dumps({"url": fi.url, "port": fi.port, "cert": fi.cert}), flush=True)
    try:
        fi.server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
