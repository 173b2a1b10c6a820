"""A tiny gRPC server for the proxyless xDS test: `/echo.Echo/Call` answers its version.

Usage: echo_server.py HOST PORT VERSION

Bytes in, bytes out (no generated stubs). Prints `ready HOST:PORT` once serving and
stops when stdin closes, so a test that dies takes the server with it.
"""

import sys
from concurrent import futures

import grpc


def main():
    host, port, version = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    answer = version.encode()

    def call(_request, _context):
        return answer

    handler = grpc.method_handlers_generic_handler(
        "echo.Echo",
        {
            "Call": grpc.unary_unary_rpc_method_handler(
                call,
                request_deserializer=None,
                response_serializer=None,
            )
        },
    )
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    server.add_generic_rpc_handlers((handler,))
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        sys.exit(f"cannot bind {host}:{port}")
    server.start()
    print(f"ready {host}:{bound}", flush=True)
    sys.stdin.read()
    server.stop(grace=None)


if __name__ == "__main__":
    main()
