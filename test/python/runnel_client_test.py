#!/usr/bin/python3
"""A client that is not ours: Debian's Python gRPC, with stubs generated from proto/ at run time.

Usage: /usr/bin/python3 test/python/runnel_client_test.py HOST:PORT TOPIC

Generates Python stubs from the unmodified contract (proto/runnel/v1/*.proto) into a temp dir
with Debian's protoc (protobuf-compiler) and gRPC Python plugin (protobuf-compiler-grpc), then
drives a running broker with Debian's python3-grpcio: creates TOPIC with 2 partitions,
produces plain records, fetches them back field by field (null vs empty through proto3
`optional` presence), lists offsets, checks the error trailers of a failed call, long-polls an
empty partition, and tails a partition with a credit-based Subscribe stream.

Why not `python3 -m grpc_tools.protoc`: Debian 12's python3-grpc-tools (1.14.1) bundles
libprotoc 3.5.1, which predates proto3 `optional` (protoc 3.12+) and rejects common.proto
("Explicit 'optional' labels are disallowed in the Proto3 syntax"). Debian's own protoc is
3.21.12 and its grpc_python_plugin comes from the same gRPC 1.51 as python3-grpcio.

Every check is recorded; a failed one is printed as `FAIL <name>: <detail>` and the run goes
on where it can. The last stdout line is a JSON summary; the exit status is 0 only when every
check passed.
"""

import json
import os
import queue
import shutil
import subprocess
import sys
import tempfile
import threading
import time

PROTOC = "/usr/bin/protoc"
GRPC_PYTHON_PLUGIN = "/usr/bin/grpc_python_plugin"
PROTO_FILES = ["runnel/v1/common.proto", "runnel/v1/log.proto", "runnel/v1/admin.proto"]
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PROTO_DIR = os.path.join(REPO_ROOT, "proto")
CALL_TIMEOUT_S = 10

passed = []
failed = []


def check(name, condition, detail=""):
    if condition:
        passed.append(name)
    else:
        failed.append(name)
        print("FAIL %s: %s" % (name, detail), flush=True)
    return condition


def check_equal(name, actual, expected):
    return check(name, actual == expected, "expected %r, got %r" % (expected, actual))


def section(name, fn):
    """Runs one group of checks; an exception fails the group instead of ending the run."""
    try:
        fn()
    except Exception as error:  # noqa: BLE001 - report anything and go on
        failed.append(name + ": raised")
        print("FAIL %s: raised %s: %s" % (name, type(error).__name__, error), flush=True)


def generate_stubs(out_dir):
    for tool in (PROTOC, GRPC_PYTHON_PLUGIN):
        if not os.access(tool, os.X_OK):
            raise SystemExit("missing %s: run scripts/install-test-deps.sh" % tool)
    command = [
        PROTOC,
        "-I", PROTO_DIR,
        "--plugin=protoc-gen-grpc_python=" + GRPC_PYTHON_PLUGIN,
        "--python_out=" + out_dir,
        "--grpc_python_out=" + out_dir,
    ] + PROTO_FILES
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit("protoc failed (%d): %s" % (result.returncode, result.stderr))
    version = subprocess.run([PROTOC, "--version"], capture_output=True, text=True).stdout.strip()
    return version


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: runnel_client_test.py HOST:PORT TOPIC")
    address, topic = sys.argv[1], sys.argv[2]
    started = time.monotonic()

    stub_dir = tempfile.mkdtemp(prefix="runnel-py-stubs-")
    try:
        protoc_version = generate_stubs(stub_dir)
        sys.path.insert(0, stub_dir)
        import grpc  # noqa: E402 - Debian's python3-grpcio
        import google.protobuf  # noqa: E402
        from runnel.v1 import admin_pb2, admin_pb2_grpc, common_pb2, log_pb2, log_pb2_grpc  # noqa: E402

        # No proxy: a CI machine's http_proxy must not capture a loopback channel.
        channel = grpc.insecure_channel(address, options=[("grpc.enable_http_proxy", 0)])
        grpc.channel_ready_future(channel).result(timeout=CALL_TIMEOUT_S)
        ctx = Context(grpc, channel, admin_pb2, admin_pb2_grpc, common_pb2, log_pb2, log_pb2_grpc, topic)
        section("create topic", ctx.create_topic)
        section("produce", ctx.produce)
        section("fetch", ctx.fetch_back)
        section("list offsets", ctx.list_offsets)
        section("unknown topic", ctx.unknown_topic)
        section("long poll", ctx.long_poll)
        section("subscribe", ctx.subscribe)
        section("subscribe credit", ctx.subscribe_credit)
        channel.close()
        summary = {
            "ok": not failed,
            "passed": len(passed),
            "failed": failed,
            "generator": protoc_version + " + grpc_python_plugin",
            "grpcio": grpc.__version__,
            "protobuf": google.protobuf.__version__,
            "python": sys.version.split()[0],
            "elapsed_ms": round((time.monotonic() - started) * 1000),
        }
    finally:
        shutil.rmtree(stub_dir, ignore_errors=True)
    print(json.dumps(summary), flush=True)
    return 0 if not failed else 1


# Record timestamps well in the past, so "unset = broker receive time" stands out.
T0 = 1_700_000_000_000


class Context:
    def __init__(self, grpc, channel, admin_pb2, admin_pb2_grpc, common_pb2, log_pb2, log_pb2_grpc, topic):
        self.grpc = grpc
        self.admin_pb2 = admin_pb2
        self.common_pb2 = common_pb2
        self.log_pb2 = log_pb2
        self.admin = admin_pb2_grpc.AdminServiceStub(channel)
        self.log = log_pb2_grpc.LogServiceStub(channel)
        self.topic = topic
        self.empty_topic = topic + "-empty"
        # What each partition should hold, in order: (key, value, headers, timestamp or None).
        self.expected = {0: [], 1: []}
        self.receive_time_window = None

    # -- helpers ---------------------------------------------------------------------------

    def record(self, key=None, value=None, headers=(), timestamp_ms=None):
        r = self.common_pb2.Record()
        if key is not None:
            r.key = key
        if value is not None:
            r.value = value
        for hkey, hvalue in headers:
            h = r.headers.add()
            h.key = hkey
            if hvalue is not None:
                h.value = hvalue
        if timestamp_ms is not None:
            r.timestamp_ms = timestamp_ms
        return r

    def produce_records(self, sequence, by_partition):
        """Sends plain records with ACKS_ALL; remembers what each partition should hold."""
        request = self.log_pb2.ProduceRequest(sequence=sequence, acks=self.log_pb2.ACKS_ALL, timeout_ms=5000)
        topic_data = request.topics.add(topic=self.topic)
        for partition, records in by_partition.items():
            pd = topic_data.partitions.add(partition=partition)
            pd.records.SetInParent()
            for spec in records:
                pd.records.records.append(self.record(**spec))
        response = self.log.Produce(request, timeout=CALL_TIMEOUT_S)
        for partition, records in by_partition.items():
            self.expected[partition].extend(records)
        return response

    def fetch_records(self, partition, offset, topic=None, **kwargs):
        request = self.log_pb2.FetchRequest(
            topic=topic or self.topic, partition=partition, offset=offset,
            format=self.common_pb2.RECORD_FORMAT_RECORDS, **kwargs)
        return self.log.Fetch(request, timeout=CALL_TIMEOUT_S)

    def fetch_to_end(self, partition, offset):
        """Fetches from `offset` until next_offset reaches the high watermark, as a consumer
        does: one Fetch may stop early (e.g. at a segment boundary). Returns (records, last)."""
        records, last = [], None
        for _ in range(100):
            last = self.fetch_records(partition, offset)
            records.extend(last.records)
            if last.next_offset >= last.high_watermark:
                break
            if last.next_offset <= offset:
                raise AssertionError("fetch from %d made no progress (next_offset %d)" % (offset, last.next_offset))
            offset = last.next_offset
        return records, last

    def check_record(self, label, got, offset, spec):
        check_equal(label + " offset", got.offset, offset)
        key, value = spec.get("key"), spec.get("value")
        check_equal(label + " key presence", got.HasField("key"), key is not None)
        if key is not None:
            check_equal(label + " key", got.key, key)
        check_equal(label + " value presence", got.HasField("value"), value is not None)
        if value is not None:
            check_equal(label + " value", got.value, value)
        want_headers = list(spec.get("headers", ()))
        got_headers = [(h.key, h.value if h.HasField("value") else None) for h in got.headers]
        check_equal(label + " headers", got_headers, want_headers)
        if spec.get("timestamp_ms") is not None:
            check_equal(label + " timestamp", got.timestamp_ms, spec["timestamp_ms"])
        else:
            low, high = self.receive_time_window
            check(label + " timestamp is the broker's receive time",
                  low - 1000 <= got.timestamp_ms <= high + 1000,
                  "%d not within [%d, %d] (+-1 s)" % (got.timestamp_ms, low, high))

    def check_partition_result(self, label, result, partition, base_offset):
        check_equal(label + " partition", result.partition, partition)
        check(label + " no error", not result.HasField("error"), "error %s" % result.error)
        check_equal(label + " base_offset", result.base_offset, base_offset)
        check_equal(label + " log_start_offset", result.log_start_offset, 0)

    # -- sections --------------------------------------------------------------------------

    def create_topic(self):
        response = self.admin.CreateTopic(
            self.admin_pb2.CreateTopicRequest(name=self.topic, partitions=2), timeout=CALL_TIMEOUT_S)
        check_equal("create: name", response.topic.name, self.topic)
        check_equal("create: partitions", [p.partition for p in response.topic.partitions], [0, 1])
        self.admin.CreateTopic(self.admin_pb2.CreateTopicRequest(name=self.empty_topic, partitions=1), timeout=CALL_TIMEOUT_S)
        listed = self.admin.ListTopics(self.admin_pb2.ListTopicsRequest(), timeout=CALL_TIMEOUT_S)
        by_name = {t.name: t.partitions for t in listed.topics}
        check_equal("list topics: partitions", by_name.get(self.topic), 2)

    def produce(self):
        first = self.produce_records(1, {
            0: [
                dict(key=b"k0", value=b"v0", headers=[("h", b"hv"), ("null-header", None), ("empty-header", b"")], timestamp_ms=T0),
                dict(key=b"k1", value=None, timestamp_ms=T0 + 1),           # null value: a tombstone
                dict(key=None, value=b"", timestamp_ms=T0 + 2),             # null key, empty value
            ],
            1: [
                dict(key=b"", value=b"p1-v0", timestamp_ms=T0 + 3),         # empty key
                dict(key=b"p1-k1", value=bytes(range(256)), timestamp_ms=T0 + 4),
            ],
        })
        check_equal("produce 1: sequence echoed", first.sequence, 1)
        check_equal("produce 1: topics", [t.topic for t in first.topics], [self.topic])
        results = {p.partition: p for p in first.topics[0].partitions}
        check_equal("produce 1: partitions answered", sorted(results), [0, 1])
        self.check_partition_result("produce 1 p0", results[0], 0, 0)
        self.check_partition_result("produce 1 p1", results[1], 1, 0)

        low = int(time.time() * 1000)
        second = self.produce_records(2, {
            0: [
                dict(key=b"k3", value=b"v3", timestamp_ms=T0 + 10_000),
                dict(key=b"k4", value=b"v4 \xe2\x9c\x93", headers=[("trace", b"abc"), ("trace", b"def")]),  # timestamp unset
            ],
            1: [dict(value=b"p1-v2", timestamp_ms=T0 + 10_001)],
        })
        self.receive_time_window = (low, int(time.time() * 1000))
        check_equal("produce 2: sequence echoed", second.sequence, 2)
        results = {p.partition: p for p in second.topics[0].partitions}
        self.check_partition_result("produce 2 p0", results[0], 0, 3)
        self.check_partition_result("produce 2 p1", results[1], 1, 2)

    def fetch_back(self):
        for partition, records in self.expected.items():
            got_records, response = self.fetch_to_end(partition, 0)
            label = "fetch p%d" % partition
            check_equal(label + " count", len(got_records), len(records))
            for offset, (got, spec) in enumerate(zip(got_records, records)):
                self.check_record("%s@%d" % (label, offset), got, offset, spec)
            check_equal(label + " high_watermark", response.high_watermark, len(records))
            check_equal(label + " next_offset", response.next_offset, len(records))
            check_equal(label + " log_start_offset", response.log_start_offset, 0)
            check_equal(label + " no batch bytes in RECORDS format", response.record_batches, b"")
        # From the middle of the first batch: records start at the asked offset.
        middle = self.fetch_records(0, 1)
        check_equal("fetch p0 from 1: starts at 1", [r.offset for r in middle.records][:2], [1, 2])
        rest, _ = self.fetch_to_end(0, 1)
        check_equal("fetch p0 from 1 to the end: offsets", [r.offset for r in rest], [1, 2, 3, 4])
        # Raw batches come back as bytes (the client would decode Kafka record batch v2).
        raw = self.log.Fetch(self.log_pb2.FetchRequest(
            topic=self.topic, partition=0, offset=0, format=self.common_pb2.RECORD_FORMAT_BATCHES), timeout=CALL_TIMEOUT_S)
        check("fetch p0 BATCHES: bytes, no records", len(raw.record_batches) > 61 and len(raw.records) == 0,
              "%d batch bytes, %d records" % (len(raw.record_batches), len(raw.records)))
        check_equal("fetch p0 BATCHES: magic byte 2", raw.record_batches[16:17], b"\x02")

    def list_offsets(self):
        def offsets(spec, timestamp_ms=0, partitions=()):
            response = self.log.ListOffsets(self.log_pb2.ListOffsetsRequest(
                topic=self.topic, partitions=list(partitions), spec=spec, timestamp_ms=timestamp_ms), timeout=CALL_TIMEOUT_S)
            for p in response.partitions:
                check("list offsets p%d spec %d: no error" % (p.partition, spec), not p.HasField("error"), str(p.error))
            return {p.partition: p for p in response.partitions}

        earliest = offsets(self.log_pb2.OFFSET_SPEC_EARLIEST)
        check_equal("list offsets EARLIEST (all partitions)", {k: v.offset for k, v in earliest.items()}, {0: 0, 1: 0})
        latest = offsets(self.log_pb2.OFFSET_SPEC_LATEST)
        check_equal("list offsets LATEST (all partitions)", {k: v.offset for k, v in latest.items()}, {0: 5, 1: 3})
        one = offsets(self.log_pb2.OFFSET_SPEC_LATEST, partitions=[1])
        check_equal("list offsets LATEST (partition 1 only)", {k: v.offset for k, v in one.items()}, {1: 3})

        before_all = offsets(self.log_pb2.OFFSET_SPEC_TIMESTAMP, T0 - 1)
        check_equal("list offsets TIMESTAMP before all", {k: v.offset for k, v in before_all.items()}, {0: 0, 1: 0})
        # Between the two produce requests: the first offset of the second batch.
        between = offsets(self.log_pb2.OFFSET_SPEC_TIMESTAMP, T0 + 5)
        check_equal("list offsets TIMESTAMP between batches", {k: v.offset for k, v in between.items()}, {0: 3, 1: 2})
        for partition, p in between.items():
            check("list offsets TIMESTAMP p%d: timestamp at or after the target" % partition,
                  p.timestamp_ms >= T0 + 5, "timestamp_ms %d" % p.timestamp_ms)
        future = int(time.time() * 1000) + 86_400_000
        too_late = offsets(self.log_pb2.OFFSET_SPEC_TIMESTAMP, future)
        check_equal("list offsets TIMESTAMP after all: log end offset, timestamp -1",
                    {k: (v.offset, v.timestamp_ms) for k, v in too_late.items()}, {0: (5, -1), 1: (3, -1)})

    def unknown_topic(self):
        grpc = self.grpc
        try:
            self.fetch_records(0, 0, topic=self.topic + "-no-such-topic")
        except grpc.RpcError as error:
            check_equal("unknown topic: status", error.code(), grpc.StatusCode.NOT_FOUND)
            trailers = dict(error.trailing_metadata() or ())
            check_equal("unknown topic: runnel-reason", trailers.get("runnel-reason"), "TOPIC_NOT_FOUND")
            check("unknown topic: runnel-retriable is true/false", trailers.get("runnel-retriable") in ("true", "false"),
                  "runnel-retriable %r" % trailers.get("runnel-retriable"))
            details = trailers.get("runnel-details")
            try:
                json.loads(details)
                details_ok = True
            except (TypeError, ValueError):
                details_ok = False
            check("unknown topic: runnel-details is JSON", details_ok, "runnel-details %r" % details)
        else:
            check("unknown topic: fails", False, "the fetch succeeded")

    def long_poll(self):
        for label, topic, partition, offset in (
            ("long poll empty partition", self.empty_topic, 0, 0),
            ("long poll at log end", self.topic, 1, 3),
        ):
            started = time.monotonic()
            response = self.fetch_records(partition, offset, topic=topic, min_bytes=1, max_wait_ms=200)
            elapsed_ms = (time.monotonic() - started) * 1000
            check_equal(label + ": no records", len(response.records), 0)
            check_equal(label + ": next_offset", response.next_offset, offset)
            check_equal(label + ": high_watermark", response.high_watermark, offset)
            check(label + ": waited ~200 ms", 180 <= elapsed_ms <= 2000, "answered after %.0f ms" % elapsed_ms)

    def subscribe(self):
        grpc = self.grpc
        requests = queue.Queue()
        responses = queue.Queue()

        def request_iterator():
            while True:
                message = requests.get()
                if message is None:
                    return
                yield message

        start = self.log_pb2.SubscribeRequest(start=self.log_pb2.SubscribeStart(
            topic=self.topic, partition=0, offset=0, credit_bytes=1, format=self.common_pb2.RECORD_FORMAT_RECORDS))
        requests.put(start)
        call = self.log.Subscribe(request_iterator(), timeout=30)

        def reader():
            try:
                for response in call:
                    responses.put(response)
                responses.put(("end", None))
            except grpc.RpcError as error:
                responses.put(("error", error))

        thread = threading.Thread(target=reader, daemon=True)
        thread.start()
        received = []
        last = [None]

        def receive_until(target_count, what):
            deadline = time.monotonic() + 10
            while len(received) < target_count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return check(what, False, "timed out with %d of %d records" % (len(received), target_count))
                try:
                    item = responses.get(timeout=remaining)
                except queue.Empty:
                    continue
                if isinstance(item, tuple):
                    return check(what, False, "stream ended: %s" % (item[1],))
                last[0] = item
                received.extend(item.records)
            return check(what, True)

        try:
            # Credit of 1 byte: the broker may send one message (overshooting by less than one
            # message) and then waits for more credit.
            receive_until(1, "subscribe: first message under a 1-byte credit")
            requests.put(self.log_pb2.SubscribeRequest(credit_bytes=1_000_000))
            receive_until(5, "subscribe: the rest after credit_bytes")
            # Live tail: records produced now arrive on the open stream.
            self.produce_records(3, {0: [dict(key=b"tail", value=b"t5", timestamp_ms=T0 + 20_000),
                                         dict(key=None, value=None, timestamp_ms=T0 + 20_001)]})
            requests.put(self.log_pb2.SubscribeRequest(credit_bytes=1_000_000))
            receive_until(7, "subscribe: tails new records")
            check_equal("subscribe: offsets", [r.offset for r in received], list(range(len(received))))
            for offset, (got, spec) in enumerate(zip(received, self.expected[0])):
                self.check_record("subscribe@%d" % offset, got, offset, spec)
            if last[0] is not None:
                check_equal("subscribe: next_offset", last[0].next_offset, 7)
                check_equal("subscribe: high_watermark", last[0].high_watermark, 7)
        finally:
            call.cancel()
            requests.put(None)
            thread.join(timeout=5)
        check("subscribe: stream closed after cancel", not thread.is_alive(), "reader thread still running")

    def subscribe_credit(self):
        """A records-format reply costs its ByteSize(), to the byte (log.proto, SubscribeStart).

        A subscriber that half-closed gets replies while its credit is above 0, then OK, so
        the replies counted show where the credit ran out. Each reply is one batch (a
        max_message_bytes of 1), starting inside the first (offset 1). With credit s1 + 1 (s1,
        s2: the first two replies' ByteSize()) a second reply must come, with s1 + s2 a third
        must not: a charge one byte over or under ByteSize() fails one of the two.
        """
        def reply_sizes(credit_bytes):
            start = self.log_pb2.SubscribeStart(topic=self.topic, partition=0, offset=1, credit_bytes=credit_bytes,
                                                max_message_bytes=1, format=self.common_pb2.RECORD_FORMAT_RECORDS)
            # The iterator ends after `start`: the client half-closes, as grpcurl does.
            call = self.log.Subscribe(iter([self.log_pb2.SubscribeRequest(start=start)]), timeout=10)
            return [response.ByteSize() for response in call]

        sizes = reply_sizes(1)
        if not check_equal("subscribe credit: replies within 1 byte", len(sizes), 1):
            return
        two = reply_sizes(sizes[0] + 1)
        check_equal("subscribe credit: replies within s1 + 1 bytes", len(two), 2)
        if len(two) == 2:
            check_equal("subscribe credit: replies within s1 + s2 bytes", len(reply_sizes(two[0] + two[1])), 2)


if __name__ == "__main__":
    sys.exit(main())
