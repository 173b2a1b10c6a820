//! details, reviews and ratings: the JSON services behind productpage.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::{json, Value};

use super::{forward_headers, product_id, service_base, Upstream};
use crate::server::{respond, BoxFut, Handler, Req, Resp};

const JSON: &str = "application/json";

fn json_resp(status: StatusCode, value: &Value) -> Resp {
    respond(status, JSON, value.to_string())
}

fn not_found() -> Resp {
    json_resp(StatusCode::NOT_FOUND, &json!({ "error": "Not found" }))
}

/// Splits `/prefix/{id}` paths.
fn path_id<'a>(req: &'a Req, prefix: &str) -> Option<&'a str> {
    req.path()
        .strip_prefix(prefix)?
        .strip_prefix('/')
        .filter(|id| !id.contains('/'))
}

// ---- details ----

pub fn details() -> Handler {
    Arc::new(|req: Req| -> BoxFut { Box::pin(async move { details_route(&req) }) })
}

fn details_route(req: &Req) -> Resp {
    if req.path() == "/health" {
        return json_resp(StatusCode::OK, &json!({ "status": "Details is healthy" }));
    }
    let Some(id) = path_id(req, "/details") else {
        return not_found();
    };
    match product_id(id) {
        Some(id) => json_resp(StatusCode::OK, &book_details(id)),
        None => json_resp(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "please provide numeric product id" }),
        ),
    }
}

pub fn book_details(id: u64) -> Value {
    json!({
        "id": id,
        "author": "William Shakespeare",
        "year": 1595,
        "type": "paperback",
        "pages": 200,
        "publisher": "PublisherA",
        "language": "English",
        "ISBN-10": "1234567890",
        "ISBN-13": "123-1234567890",
    })
}

// ---- ratings ----

/// `SERVICE_VERSION` of the real ratings image: `v-faulty` fails half the calls with
/// 503, `v-delayed` delays a quarter by 7 s — the chaos Istio's tasks demonstrate.
pub fn ratings(version: String) -> Handler {
    let version: Arc<str> = version.into();
    Arc::new(move |req: Req| -> BoxFut {
        let version = version.clone();
        Box::pin(async move { ratings_route(&req, &version).await })
    })
}

async fn ratings_route(req: &Req, version: &str) -> Resp {
    if req.path() == "/health" {
        return json_resp(StatusCode::OK, &json!({ "status": "Ratings is healthy" }));
    }
    let Some(id) = path_id(req, "/ratings") else {
        return not_found();
    };
    let Some(id) = product_id(id) else {
        return json_resp(
            StatusCode::BAD_REQUEST,
            &json!({ "error": "please provide numeric product ID" }),
        );
    };
    match version {
        "v-faulty" if rand::random::<f64>() < 0.5 => {
            return json_resp(
                StatusCode::SERVICE_UNAVAILABLE,
                &json!({ "error": "Service unavailable" }),
            );
        }
        "v-delayed" if rand::random::<f64>() < 0.25 => {
            tokio::time::sleep(Duration::from_secs(7)).await;
        }
        _ => {}
    }
    json_resp(
        StatusCode::OK,
        &json!({ "id": id, "ratings": { "Reviewer1": 5, "Reviewer2": 4 } }),
    )
}

// ---- reviews ----

/// How one reviews deployment behaves; v1 shows no ratings, v2 black stars, v3 red.
#[derive(Debug, Clone)]
pub struct ReviewsConfig {
    pub ratings_enabled: bool,
    pub star_color: String,
    pub podname: String,
    pub clustername: String,
    pub ratings_base: String,
}

impl ReviewsConfig {
    /// The version's defaults, overridden by the real image's env (`ENABLE_RATINGS`,
    /// `STAR_COLOR`, `CLUSTER_NAME`, `RATINGS_HOSTNAME`...). The pod name comes from
    /// `POD_NAME` or `HOSTNAME` when either names a reviews pod, else `reviews-<version>`,
    /// so the page always says which version answered.
    pub fn from_env(version: &str) -> Self {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let ratings_enabled = env("ENABLE_RATINGS")
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(version != "v1");
        let star_color = env("STAR_COLOR")
            .unwrap_or_else(|| if version == "v3" { "red" } else { "black" }.to_string());
        let podname = env("POD_NAME")
            .or_else(|| env("HOSTNAME").filter(|h| h.starts_with("reviews")))
            .unwrap_or_else(|| format!("reviews-{version}"));
        ReviewsConfig {
            ratings_enabled,
            star_color,
            podname,
            clustername: env("CLUSTER_NAME").unwrap_or_else(|| "null".to_string()),
            ratings_base: service_base("ratings"),
        }
    }

    /// The real service waits longer for ratings with black stars than with red ones;
    /// Istio's timeout tasks depend on the difference.
    fn ratings_timeout(&self) -> Duration {
        if self.star_color == "black" {
            Duration::from_secs(10)
        } else {
            Duration::from_millis(2500)
        }
    }
}

pub fn reviews(config: ReviewsConfig) -> Handler {
    let config = Arc::new(config);
    let upstream = Upstream::new();
    Arc::new(move |req: Req| -> BoxFut {
        let config = config.clone();
        let upstream = upstream.clone();
        Box::pin(async move { reviews_route(&req, &config, &upstream).await })
    })
}

async fn reviews_route(req: &Req, config: &ReviewsConfig, upstream: &Upstream) -> Resp {
    if req.path() == "/health" {
        return json_resp(StatusCode::OK, &json!({ "status": "Reviews is healthy" }));
    }
    let Some(id) = path_id(req, "/reviews").and_then(product_id) else {
        return not_found();
    };
    let stars = if config.ratings_enabled {
        fetch_ratings(id, req, config, upstream).await
    } else {
        None
    };
    let review = |reviewer: &str, text: &str| {
        let mut r = json!({ "reviewer": reviewer, "text": text });
        if config.ratings_enabled {
            r["rating"] = match stars
                .as_ref()
                .and_then(|s| s.get(reviewer))
                .and_then(Value::as_i64)
            {
                Some(n) => json!({ "stars": n, "color": config.star_color }),
                None => json!({ "error": "Ratings service is currently unavailable" }),
            };
        }
        r
    };
    let body = json!({
        "id": id.to_string(),
        "podname": config.podname,
        "clustername": config.clustername,
        "reviews": [
            review("Reviewer1", "An extremely entertaining play by Shakespeare. The slapstick humour is refreshing!"),
            review("Reviewer2", "Absolutely fun and entertaining. The play lacks thematic depth when compared to other plays by Shakespeare."),
        ],
    });
    json_resp(StatusCode::OK, &body)
}

/// The `ratings` object of the ratings service, or `None` when it failed.
async fn fetch_ratings(
    id: u64,
    req: &Req,
    config: &ReviewsConfig,
    upstream: &Upstream,
) -> Option<Value> {
    let url = format!("{}/ratings/{id}", config.ratings_base);
    match upstream
        .get_json(&url, &forward_headers(req), config.ratings_timeout())
        .await
    {
        Ok(f) if f.status == StatusCode::OK => f.json?.get("ratings").cloned(),
        Ok(f) => {
            eprintln!(
                "Error: unable to contact {url} got status of {}",
                f.status.as_u16()
            );
            None
        }
        Err(e) => {
            eprintln!("Error: unable to contact ratings: {e}");
            None
        }
    }
}
