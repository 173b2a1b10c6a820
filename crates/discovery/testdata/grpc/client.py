"""A proxyless gRPC client for the xDS test: unary calls through an `xds:///` channel.

The bootstrap comes from GRPC_XDS_BOOTSTRAP.

  client.py count TARGET N [KEY=VALUE ...]
      N calls (metadata KEY=VALUE on each); prints one JSON line:
      {"counts": {"v1": 97, ...}, "errors": {"UNAVAILABLE": 3}, "messages": [...],
       "csds": [...]}
  client.py watch TARGET CODE SECONDS
      Calls until one succeeds, prints `serving`, then keeps calling (every 20 ms) until
      10 calls in a row fail with CODE or SECONDS pass; prints one JSON line:
      {"switched": true, "after_s": 0.4, "counts": ..., "errors": ..., "messages": ...,
       "csds": [...]}

"counts" are the versions that answered, "errors" the status codes of failed calls,
"messages" the first distinct error details (a NACK or a missing resource shows here),
and "csds" what grpcio's own xDS client holds (ACKED/NACKED per resource, with the
error it found), so a failing test shows why.
"""

import json
import sys
import time

import grpc
from grpc._cython import cygrpc

# grpcio's CSDS dump is a serialized ClientStatusResponse.
from envoy.service.status.v3 import csds_pb2

DEADLINE_S = 5.0
# The first call also waits for the listener, routes, clusters and endpoints.
FIRST_DEADLINE_S = 15.0
SWITCHED_AFTER = 10


def csds_summary():
    out = []
    try:
        response = csds_pb2.ClientStatusResponse.FromString(cygrpc.dump_xds_configs())
    except Exception as e:  # a diagnostic must never hide the real result
        return [{"error": f"cannot read grpcio's CSDS dump: {e}"}]
    for config in response.config:
        for c in config.generic_xds_configs:
            status_enum = c.DESCRIPTOR.fields_by_name["client_status"].enum_type
            entry = {
                "type": c.type_url.rsplit("/", 1)[-1],
                "name": c.name,
                "status": status_enum.values_by_number[c.client_status].name,
            }
            if c.HasField("error_state"):
                entry["error"] = c.error_state.details
            out.append(entry)
    return out


class Tally:
    def __init__(self):
        self.counts, self.errors, self.messages = {}, {}, []

    def call(self, stub, first, metadata=()):
        """One call; returns the status code name ("OK" on success)."""
        try:
            reply = stub(
                b"hi",
                timeout=FIRST_DEADLINE_S if first else DEADLINE_S,
                metadata=metadata,
                wait_for_ready=first,
            )
        except grpc.RpcError as e:
            code = e.code().name
            self.errors[code] = self.errors.get(code, 0) + 1
            detail = f"{code}: {e.details()}"
            if detail not in self.messages and len(self.messages) < 5:
                self.messages.append(detail)
            return code
        version = reply.decode()
        self.counts[version] = self.counts.get(version, 0) + 1
        return "OK"

    def report(self, **extra):
        # Read while the channel (and so grpcio's xDS client) is still alive.
        extra.update(
            counts=self.counts,
            errors=self.errors,
            messages=self.messages,
            csds=csds_summary(),
        )
        return extra


def stub_for(channel):
    return channel.unary_unary(
        "/echo.Echo/Call", request_serializer=None, response_deserializer=None
    )


def count(target, n, pairs):
    metadata = tuple(tuple(kv.split("=", 1)) for kv in pairs)
    tally = Tally()
    with grpc.insecure_channel(target) as channel:
        stub = stub_for(channel)
        for i in range(n):
            tally.call(stub, i == 0, metadata)
        return tally.report()


def watch(target, code, seconds):
    tally = Tally()
    with grpc.insecure_channel(target) as channel:
        stub = stub_for(channel)
        if tally.call(stub, True) != "OK":
            return tally.report(switched=False, serving=False)
        print("serving", flush=True)
        start = time.monotonic()
        in_a_row = 0
        while time.monotonic() - start < seconds:
            in_a_row = in_a_row + 1 if tally.call(stub, False) == code else 0
            if in_a_row >= SWITCHED_AFTER:
                return tally.report(
                    switched=True, serving=True, after_s=time.monotonic() - start
                )
            time.sleep(0.02)
        return tally.report(switched=False, serving=True)


def main():
    mode, target = sys.argv[1], sys.argv[2]
    if mode == "count":
        result = count(target, int(sys.argv[3]), sys.argv[4:])
    elif mode == "watch":
        result = watch(target, sys.argv[3], float(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {mode!r}: use count or watch")
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
