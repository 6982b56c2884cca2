"""Real datagrams over UDP v4, UDP v6 and a Unix datagram socket; counters
checked through /status. Includes hostile datagrams (B2)."""
import os
import socket

from agentlib import Agent, Runner


def test_udp_v4_v6_uds_counters():
    a = Agent()
    a.cfg["dogstatsd_socket"] = os.path.join(a.dir, "dsd.sock")
    a.write_config()
    a.start()
    try:
        a.send("a:1|c\nb:2|g\nc:3|ms")                      # v4: 3 lines
        a.send("d:4|h|@0.5|#x:y\r\ne:u1|s\n\nf:5|d", socket.AF_INET6)  # v6: 4 lines
        a.send_uds("_e{5,4}:title|text|#t\n_sc|svc|0|m:ok")   # uds: event + check
        s = a.wait_for(lambda s: s["dogstatsd"]["packets"] == 3, what="3 packets")
        d = s["dogstatsd"]
        assert d["udp_packets"] == 2 and d["uds_packets"] == 1, d
        assert d["lines"] == 8, d  # the empty line is skipped
        assert d["samples"] == {"count": 1, "gauge": 1, "timing": 1, "histogram": 1,
                                "set": 1, "distribution": 1}, d["samples"]
        assert d["events"] == 1 and d["service_checks"] == 1, d
        assert d["metric_parse_errors"] == 0, d
        st = os.stat(a.cfg["dogstatsd_socket"])
        assert oct(st.st_mode & 0o777) == oct(0o660), oct(st.st_mode)
    finally:
        a.cleanup()


def test_parse_errors_counted_and_next_line_parsed():
    a = Agent().start()
    try:
        a.send("ok1:1|c\n:1|c\nnovalue|c\nx:abc|c\nx:1|zz\nx:nan|g\nx:1|c|@abc\nx:1|g|T-5\n"
               "_e{9,1}:t|x\n_sc|n|7\nok2:2|c")
        s = a.wait_for(lambda s: s["dogstatsd"]["lines"] == 11, what="11 lines")
        d = s["dogstatsd"]
        assert d["samples"]["count"] == 2, d
        assert d["metric_parse_errors"] == 7, d
        assert d["event_parse_errors"] == 1 and d["service_check_parse_errors"] == 1, d
        e = d["parse_errors"]
        for k in ("empty_name", "bad_value", "bad_type", "nan_inf", "bad_sample_rate", "bad_timestamp"):
            assert e.get(k) == 1, (k, e)
    finally:
        a.cleanup()


def test_truncated_datagram_counted_not_parsed():
    a = Agent({"dogstatsd_buffer_size": 1024}).start()
    try:
        big = ("t:1|c\n" * 400).encode()  # 2400 bytes
        a.send(big)
        a.send("after:1|c")
        s = a.wait_for(lambda s: s["dogstatsd"]["packets"] == 2, what="2 packets")
        d = s["dogstatsd"]
        assert d["truncated"] == 1, d
        assert d["lines"] == 1 and d["samples"]["count"] == 1, d
    finally:
        a.cleanup()


def test_hostile_datagrams_do_not_crash():
    a = Agent({"dogstatsd_buffer_size": 65536}).start()
    try:
        hostile = [
            b"n" * 60000 + b":1|c",                           # 60 KB name
            b"m:1|c|#" + b",".join(b"t%d" % i for i in range(10000)),  # 10k tags
            b"nul\x00name:1|c",
            b"bad\xff\xfeutf8:1|c",
            b"_e{100,100}:short|text",
            b"_e{-1,2}:|ab",
            b"huge:1e400|g",
            b"neg:-5|c",
            b"|" * 30000,
            b":" * 30000,
        ]
        for h in hostile:
            a.send(h)
        a.send("alive:1|c")
        s = a.wait_for(lambda s: s["dogstatsd"]["packets"] == len(hostile) + 1, what="all packets")
        e = s["dogstatsd"]["parse_errors"]
        assert e["name_too_long"] >= 1, e
        assert e["too_many_tags"] >= 1, e
        assert e["nul_byte"] == 1, e
        assert e["invalid_utf8"] == 1, e
        assert e["event_length"] + e["event_header"] >= 2, e
        assert e["nan_inf"] == 1, e
        # neg:-5|c and alive:1|c accepted
        assert s["dogstatsd"]["samples"]["count"] == 2, s["dogstatsd"]
        assert a.proc.poll() is None
    finally:
        a.cleanup()


if __name__ == "__main__":
    Runner().run([test_udp_v4_v6_uds_counters, test_parse_errors_counted_and_next_line_parsed,
                  test_truncated_datagram_counted_not_parsed, test_hostile_datagrams_do_not_crash])
