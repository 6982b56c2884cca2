#!/usr/bin/env python3
"""qdepth.py - samples a UDP socket's receive queue (bench/run.sh QDEPTH=1).

Reads /proc/net/udp and /proc/net/udp6 every INTERVAL ms for the sockets
bound to PORT and, on SIGTERM/SIGINT, prints one line:
    maxq_kib=N drops=D samples=S
maxq_kib: the deepest receive queue seen (KiB, summed over the port's
sockets); drops: the sockets' drop counters at the end. The queue's depth
against the socket buffer is a burst's headroom: a loss is a spike that
reaches the buffer. One process, one small read per sample: light enough to
run beside both receivers alike on 2 cores (a `curl /status` every 20 ms is
not: it caused drops of its own).

usage: qdepth.py PORT [INTERVAL_MS]   (default 10)
"""
import signal
import sys
import time


def sample(port_hex):
    q = drops = 0
    for path in ('/proc/net/udp', '/proc/net/udp6'):
        try:
            with open(path) as f:
                next(f)
                for line in f:
                    fields = line.split()
                    if fields[1].rsplit(':', 1)[1] == port_hex:
                        q += int(fields[4].split(':')[1], 16)
                        drops += int(fields[-1])
        except OSError:
            pass
    return q, drops


def main():
    port_hex = '%04X' % int(sys.argv[1])
    interval = (int(sys.argv[2]) if len(sys.argv) > 2 else 10) / 1000.0
    state = {'max': 0, 'drops': 0, 'n': 0, 'run': True}

    def stop(*_):
        state['run'] = False
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while state['run']:
        q, d = sample(port_hex)
        state['max'] = max(state['max'], q)
        state['drops'] = d
        state['n'] += 1
        time.sleep(interval)
    q, d = sample(port_hex)
    print('maxq_kib=%d drops=%d samples=%d' % (max(state['max'], q) // 1024, d, state['n']),
          flush=True)


if __name__ == '__main__':
    main()
