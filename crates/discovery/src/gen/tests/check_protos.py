"""Parses every generated xDS resource with Envoy's own Python protos (xds-protos).

Usage: check_protos.py DIR

DIR holds one sub-directory per proxy; each holds `<n>.<kind>.bin` files (kind: listener,
route, cluster, endpoint) written by the Rust test. Every file must parse as its message,
every nested Any must name a known type and parse, and no message may carry unknown
fields. For each proxy a `bootstrap.json` is written that puts the resources into Envoy's
static_resources (route configurations inline in check listeners, load assignments in
static clusters) so that `envoy --mode validate` can check them too.
"""

import json
import os
import sys

from google.protobuf import any_pb2, json_format, symbol_database
from google.protobuf.unknown_fields import UnknownFieldSet

# Import every package whose messages can appear in our resources so that the default
# pool (and json_format) can resolve their Any type URLs.
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.endpoint.v3 import endpoint_pb2
from envoy.config.listener.v3 import listener_pb2
from envoy.config.route.v3 import route_pb2
from envoy.extensions.access_loggers.file.v3 import file_pb2  # noqa: F401
from envoy.extensions.filters.http.cors.v3 import cors_pb2  # noqa: F401
from envoy.extensions.filters.http.fault.v3 import fault_pb2  # noqa: F401
from envoy.extensions.filters.http.router.v3 import router_pb2  # noqa: F401
from envoy.extensions.filters.listener.http_inspector.v3 import http_inspector_pb2  # noqa: F401
from envoy.extensions.filters.listener.original_dst.v3 import original_dst_pb2  # noqa: F401
from envoy.extensions.filters.listener.tls_inspector.v3 import tls_inspector_pb2  # noqa: F401
from envoy.extensions.filters.network.http_connection_manager.v3 import http_connection_manager_pb2  # noqa: F401
from envoy.extensions.filters.network.tcp_proxy.v3 import tcp_proxy_pb2  # noqa: F401
from envoy.extensions.retry.host.previous_hosts.v3 import previous_hosts_pb2  # noqa: F401
from envoy.extensions.retry.priority.previous_priorities.v3 import previous_priorities_config_pb2  # noqa: F401
from envoy.extensions.transport_sockets.tls.v3 import tls_pb2  # noqa: F401
from envoy.extensions.upstreams.http.v3 import http_protocol_options_pb2  # noqa: F401

KINDS = {
    "listener": listener_pb2.Listener,
    "route": route_pb2.RouteConfiguration,
    "cluster": cluster_pb2.Cluster,
    "endpoint": endpoint_pb2.ClusterLoadAssignment,
}

DB = symbol_database.Default()


def check(msg, path, errors):
    """Recursively checks unknown fields and unpacks Any values."""
    unknown = UnknownFieldSet(msg)
    if len(unknown):
        errors.append(f"{path}: {len(unknown)} unknown field(s) in {msg.DESCRIPTOR.full_name}")
    if msg.DESCRIPTOR.full_name == "google.protobuf.Any":
        name = msg.type_url.split("/")[-1]
        if not msg.type_url.startswith("type.googleapis.com/"):
            errors.append(f"{path}: type URL {msg.type_url!r} lacks type.googleapis.com/")
        try:
            cls = DB.GetSymbol(name)
        except KeyError:
            errors.append(f"{path}: unknown Any type {msg.type_url!r}")
            return
        inner = cls()
        try:
            inner.ParseFromString(msg.value)
        except Exception as e:  # noqa: BLE001
            errors.append(f"{path}: {name} does not parse: {e}")
            return
        check(inner, f"{path}<{name}>", errors)
        return
    for field, value in msg.ListFields():
        if field.message_type is None:
            continue
        sub = f"{path}.{field.name}"
        if field.message_type.GetOptions().map_entry:
            for k, v in value.items():
                if hasattr(v, "DESCRIPTOR"):
                    check(v, f"{sub}[{k}]", errors)
        elif field.is_repeated:
            for i, v in enumerate(value):
                check(v, f"{sub}[{i}]", errors)
        else:
            check(value, sub, errors)


def to_json(msg):
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def bootstrap(proxy, parsed):
    listeners = [to_json(m) for k, m in parsed if k == "listener" and not m.HasField("api_listener")]
    clusters = [to_json(m) for k, m in parsed if k == "cluster"]
    port = 21000
    for k, m in parsed:
        if k == "route":
            port += 1
            listeners.append({
                "name": f"check-route-{port}",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "check",
                        "route_config": to_json(m),
                        "http_filters": [
                            {"name": "envoy.filters.http.fault", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault"}},
                            {"name": "envoy.filters.http.cors", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors"}},
                            {"name": "envoy.filters.http.router", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}},
                        ],
                    },
                }]}],
            })
        elif k == "endpoint":
            port += 1
            cla = to_json(m)
            cla["cluster_name"] = f"check-eds-{port}"
            clusters.append({"name": cla["cluster_name"], "type": "STATIC", "load_assignment": cla})
    clusters.append({
        "name": "xds-grpc",
        "type": "STATIC",
        "typed_extension_protocol_options": {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "explicit_http_config": {"http2_protocol_options": {}},
            }
        },
        "load_assignment": {"cluster_name": "xds-grpc", "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 15010}}}}]}]},
    })
    return {
        "node": {"id": f"{proxy}~127.0.0.1~check.default~default.svc.cluster.local", "cluster": "check"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "dynamic_resources": {
            "ads_config": {"api_type": "GRPC", "transport_api_version": "V3", "grpc_services": [{"envoy_grpc": {"cluster_name": "xds-grpc"}}]},
        },
        "static_resources": {"listeners": listeners, "clusters": clusters},
    }


def main():
    root = sys.argv[1]
    errors = []
    count = 0
    for proxy in sorted(os.listdir(root)):
        pdir = os.path.join(root, proxy)
        if not os.path.isdir(pdir):
            continue
        parsed = []
        for name in sorted(os.listdir(pdir)):
            if not name.endswith(".bin"):
                continue
            kind = name.split(".")[1]
            msg = KINDS[kind]()
            with open(os.path.join(pdir, name), "rb") as f:
                data = f.read()
            try:
                msg.ParseFromString(data)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{proxy}/{name}: does not parse as {msg.DESCRIPTOR.full_name}: {e}")
                continue
            check(msg, f"{proxy}/{name}", errors)
            try:
                json_format.MessageToJson(msg)
            except Exception as e:  # noqa: BLE001
                errors.append(f"{proxy}/{name}: cannot render as JSON: {e}")
            parsed.append((kind, msg))
            count += 1
        with open(os.path.join(pdir, "bootstrap.json"), "w") as f:
            json.dump(bootstrap(proxy, parsed), f, indent=1)
    for e in errors:
        print(e)
    print(f"checked {count} resources, {len(errors)} problem(s)")
    sys.exit(1 if errors or count == 0 else 0)


if __name__ == "__main__":
    main()
