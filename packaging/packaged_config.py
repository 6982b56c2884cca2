#!/usr/bin/env python3
"""packaged_config.py IN OUT - the agent.yaml the .deb and .rpm install.

conf.d/agent.yaml is the quick start's file: without an intake every flush
is printed as JSON lines on stdout, which under systemd means several journal
lines every flush. The packages install the same file with a header saying
what an unconfigured packaged agent does and dogstatsd_output_file set to
"none". Fails (exit 1) when conf.d/agent.yaml no longer has the line it
replaces, so the two files cannot drift apart silently.
Run by conf.d/meson.build with -Dpackaged_config=true.
"""
import sys

HEADER = """\
## Packaged default (.deb / .rpm)
##
## With no intake configured (no api_key, no dd_url) this agent receives,
## aggregates and evaluates its alert rules, keeps everything on this host
## and writes no metrics to the journal (dogstatsd_output_file: none, below).
## It logs one warning at start, then once an hour, saying nothing is
## forwarded. `systemctl status dd-mini-agent` shows lines/s, contexts, the
## intake state and the alerts firing; `dd-mini-agent status` shows more.
##
## To forward to Datadog: put the API key in /etc/dd-mini-agent/api_key
## (root:root, mode 0600; systemd hands it to the service as the credential
## api_key) and run `systemctl restart dd-mini-agent`. To forward to another
## Datadog-compatible intake (a VictoriaMetrics, ...), set dd_url below.
## After editing this file: `systemctl reload dd-mini-agent` (it checks the
## file first and keeps the running configuration if the file is invalid).

"""

OLD = '# dogstatsd_output_file: "-"\n'
NEW = ('## Packaged default: "none" (nothing written; see the top of this file).\n'
       '## "-" would print every flush as JSON lines into the journal.\n'
       'dogstatsd_output_file: none\n')


def main(src, dst):
    with open(src, encoding="utf-8") as f:
        text = f.read()
    if text.count(OLD) != 1:
        sys.exit(f"{src}: expected one line {OLD.strip()!r} to replace, found {text.count(OLD)}")
    with open(dst, "w", encoding="utf-8") as f:
        f.write(HEADER + text.replace(OLD, NEW))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: packaged_config.py IN OUT")
    main(sys.argv[1], sys.argv[2])
