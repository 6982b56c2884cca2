#!/usr/bin/python3
"""receiver.py - prints every notification POSTed to it (stands in for
Slack, PagerDuty and an Alertmanager webhook receiver). Answers 200 (202 for
paths containing "pagerduty", as PagerDuty does).

Usage: ./receiver.py [port]     (default 9099)
"""
import http.server
import json
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        try:
            shown = json.dumps(json.loads(body), indent=2)
        except ValueError:
            shown = body.decode(errors="replace")
        print("--- POST %s\n%s" % (self.path, shown), flush=True)
        self.send_response(202 if "pagerduty" in self.path else 200)
        self.end_headers()

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 9099
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
