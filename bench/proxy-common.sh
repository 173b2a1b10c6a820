# Shared by bench/proxy-ab.sh and bench/proxy-instructions.sh (sourced): the nginx
# config both start, and the static ironmesh-proxy router config both measure (one
# listener on 127.0.0.1:18080, one STATIC cluster to 127.0.0.1:18081).

# nginx.conf with 1 worker and keep-alive settings for a benchmark, around a server block.
nginx_conf() { # dir server-block
    cat <<CONF
worker_processes 1;
daemon off;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  keepalive_requests 1000000;
  keepalive_timeout 120s;
  $2
}
CONF
}

# Writes the router's --config-file to $1.
router_config() {
    cat >"$1" <<'JSON'
{"listeners":[{"@type":"type.googleapis.com/envoy.config.listener.v3.Listener","name":"0.0.0.0_18080","address":{"socketAddress":{"address":"127.0.0.1","portValue":18080}},"filterChains":[{"filters":[{"name":"envoy.filters.network.http_connection_manager","typedConfig":{"@type":"type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager","statPrefix":"outbound_0.0.0.0_80","useRemoteAddress":true,"routeConfig":{"name":"http.80","virtualHosts":[{"name":"bench:80","domains":["*"],"routes":[{"match":{"prefix":"/"},"route":{"cluster":"outbound|80||backend.bench.internal"}}]}]},"httpFilters":[{"name":"envoy.filters.http.router","typedConfig":{"@type":"type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}],
"clusters":[{"@type":"type.googleapis.com/envoy.config.cluster.v3.Cluster","name":"outbound|80||backend.bench.internal","type":"STATIC","connectTimeout":"10s","loadAssignment":{"clusterName":"outbound|80||backend.bench.internal","endpoints":[{"lbEndpoints":[{"endpoint":{"address":{"socketAddress":{"address":"127.0.0.1","portValue":18081}}}}]}]}}]}
JSON
}
