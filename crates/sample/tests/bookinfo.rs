//! The bookinfo roles wired together on loopback ports through the env variables the
//! real images read: productpage → details, reviews → ratings.

mod common;

use common::{closed_port, request, upstream_env, Recorder, Sample};
use serde_json::json;

struct Chain {
    productpage: Sample,
    _details: Sample,
    _reviews: Sample,
    ratings: Sample,
}

fn chain(version: &str) -> Chain {
    let ratings = Sample::start(&["ratings"], &[]);
    let details = Sample::start(&["details"], &[]);
    let reviews = Sample::start(
        &["reviews", "--version", version],
        &upstream_env("ratings", ratings.port()),
    );
    let mut env = upstream_env("details", details.port());
    env.extend(upstream_env("reviews", reviews.port()));
    let productpage = Sample::start(&["productpage"], &env);
    Chain {
        productpage,
        _details: details,
        _reviews: reviews,
        ratings,
    }
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn v2_shows_black_stars_and_its_version() {
    let c = chain("v2");
    let r = c.productpage.get("/productpage");
    assert_eq!(r.status, 200);
    let page = r.text();
    assert!(page.contains("<title>Simple Bookstore App</title>"));
    assert!(page.contains("The Comedy of Errors"));
    assert!(
        page.contains("PublisherA") && page.contains("1234567890"),
        "details shown"
    );
    assert!(page.contains("Reviewer1") && page.contains("Reviewer2"));
    assert!(page.contains("reviews-v2"), "{page}");
    assert!(page.contains("<font color=\"black\">"));
    assert!(!page.contains("color=\"red\""));
    // Reviewer1 5 stars, Reviewer2 4 stars + 1 empty.
    assert_eq!(count(&page, "\"glyphicon glyphicon-star\""), 9);
    assert_eq!(count(&page, "\"glyphicon glyphicon-star-empty\""), 1);
    assert!(!page.contains("Error fetching"));
    c.ratings.wait_log("GET /ratings/0");
}

#[test]
fn v1_has_no_ratings_and_does_not_call_ratings() {
    let c = chain("v1");
    let page = c.productpage.get("/productpage").text();
    assert!(page.contains("reviews-v1"), "{page}");
    assert!(page.contains("Reviewer1"));
    assert!(!page.contains("glyphicon-star"));
    assert!(!page.contains("Ratings service is currently unavailable"));
    c.productpage.wait_log("GET /productpage");
    assert!(
        !c.ratings.log().iter().any(|l| l.contains("/ratings/")),
        "reviews v1 must not call ratings: {:?}",
        c.ratings.log()
    );
}

#[test]
fn v3_shows_red_stars() {
    let c = chain("v3");
    let page = c.productpage.get("/productpage").text();
    assert!(page.contains("reviews-v3"), "{page}");
    assert!(page.contains("<font color=\"red\">"));
    assert!(!page.contains("color=\"black\""));
    assert_eq!(count(&page, "\"glyphicon glyphicon-star\""), 9);
}

#[test]
fn tracing_and_user_headers_propagate_through_the_chain() {
    // productpage → real reviews v2 → a recorder standing in for ratings.
    let ratings = Recorder::start(r#"{"id":0,"ratings":{"Reviewer1":3,"Reviewer2":1}}"#);
    let details = Sample::start(&["details"], &[]);
    let reviews = Sample::start(
        &["reviews", "--version", "v2"],
        &upstream_env("ratings", ratings.addr.port()),
    );
    let mut env = upstream_env("details", details.port());
    env.extend(upstream_env("reviews", reviews.port()));
    let productpage = Sample::start(&["productpage"], &env);

    let r = request(
        productpage.addr,
        "GET",
        "/productpage",
        &[
            ("x-request-id", "req-123"),
            ("x-b3-traceid", "2d88aa543462b4e1b30e5a52126e8a3a"),
            ("x-b3-spanid", "32e1a5ae744f591f"),
            ("x-b3-sampled", "1"),
            (
                "traceparent",
                "00-2d88aa543462b4e1b30e5a52126e8a3a-32e1a5ae744f591f-01",
            ),
            ("b3", "2d88aa543462b4e1b30e5a52126e8a3a-32e1a5ae744f591f-1"),
            ("user", "zhongmingmao"),
            ("cookie", "user=jason"),
            ("x-not-propagated", "nope"),
        ],
        b"",
    );
    let page = r.text();
    // The stars come from the recorder's answer: 3 + 1.
    assert_eq!(count(&page, "\"glyphicon glyphicon-star\""), 4, "{page}");
    assert_eq!(ratings.header_values("x-request-id"), vec!["req-123"]);
    assert_eq!(
        ratings.header_values("x-b3-traceid"),
        vec!["2d88aa543462b4e1b30e5a52126e8a3a"]
    );
    assert_eq!(ratings.header_values("x-b3-sampled"), vec!["1"]);
    assert_eq!(
        ratings.header_values("traceparent"),
        vec!["00-2d88aa543462b4e1b30e5a52126e8a3a-32e1a5ae744f591f-01"]
    );
    assert_eq!(ratings.header_values("b3").len(), 1);
    assert_eq!(ratings.header_values("user"), vec!["zhongmingmao"]);
    // The signed-in user (cookie) becomes `end-user`, which routing rules match on.
    assert_eq!(ratings.header_values("end-user"), vec!["jason"]);
    assert!(ratings.header_values("x-not-propagated").is_empty());
    assert_eq!(
        ratings.header_values("host"),
        vec![ratings.addr.to_string()]
    );
}

#[test]
fn login_sets_the_user_cookie() {
    let c = chain("v1");
    let r = request(
        c.productpage.addr,
        "POST",
        "/login",
        &[
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("Referer", "/productpage"),
        ],
        b"username=jason&passwd=x",
    );
    assert_eq!(r.status, 302);
    assert_eq!(r.header("location"), Some("/productpage"));
    assert!(r.header("set-cookie").unwrap().starts_with("user=jason"));
    let page = request(
        c.productpage.addr,
        "GET",
        "/productpage",
        &[("Cookie", "user=jason")],
        b"",
    )
    .text();
    assert!(page.contains("jason") && page.contains("Sign out"));
}

#[test]
fn upstream_failures_are_reported_in_the_page() {
    let down = closed_port();
    let mut env = upstream_env("details", down);
    env.extend(upstream_env("reviews", down));
    let productpage = Sample::start(&["productpage"], &env);
    let r = productpage.get("/productpage");
    assert_eq!(r.status, 200, "the page itself still renders");
    let page = r.text();
    assert!(page.contains("Error fetching product details!"), "{page}");
    assert!(page.contains("Sorry, product details are currently unavailable for this book."));
    assert!(page.contains("Error fetching product reviews!"));
    assert!(page.contains("Sorry, product reviews are currently unavailable for this book."));
    let api = productpage.get("/api/v1/products/0/reviews");
    assert_eq!(api.status, 500);
    assert_eq!(
        api.json(),
        json!({ "error": "Sorry, product reviews are currently unavailable for this book." })
    );

    // reviews v2 with ratings down: the reviews still answer, each with the error.
    let reviews = Sample::start(
        &["reviews", "--version", "v2"],
        &upstream_env("ratings", down),
    );
    let v = reviews.get("/reviews/0").json();
    assert_eq!(
        v["reviews"][0]["rating"],
        json!({ "error": "Ratings service is currently unavailable" })
    );
}

#[test]
fn json_endpoints_match_the_real_services() {
    let details = Sample::start(&["details"], &[]);
    assert_eq!(
        details.get("/details/0").json(),
        json!({
            "id": 0, "author": "William Shakespeare", "year": 1595, "type": "paperback",
            "pages": 200, "publisher": "PublisherA", "language": "English",
            "ISBN-10": "1234567890", "ISBN-13": "123-1234567890"
        })
    );
    assert_eq!(details.get("/details/abc").status, 400);
    assert_eq!(
        details.get("/health").json(),
        json!({ "status": "Details is healthy" })
    );

    let ratings = Sample::start(&["ratings"], &[]);
    let r = ratings.get("/ratings/0");
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(
        r.text(),
        r#"{"id":0,"ratings":{"Reviewer1":5,"Reviewer2":4}}"#
    );
    assert_eq!(
        ratings.get("/health").json(),
        json!({ "status": "Ratings is healthy" })
    );

    let reviews = Sample::start(
        &["reviews"],
        &[
            ("SERVICE_VERSION", "v3".to_string()),
            ("HOSTNAME", "reviews-v3-5c5cc7b6d-ab12c".to_string()),
        ]
        .into_iter()
        .chain(upstream_env("ratings", ratings.port()))
        .collect::<Vec<_>>(),
    );
    let v = reviews.get("/reviews/0").json();
    assert_eq!(v["id"], "0");
    assert_eq!(v["podname"], "reviews-v3-5c5cc7b6d-ab12c");
    assert_eq!(v["clustername"], "null");
    assert_eq!(v["reviews"][0]["reviewer"], "Reviewer1");
    assert_eq!(
        v["reviews"][0]["rating"],
        json!({ "stars": 5, "color": "red" })
    );
    assert_eq!(
        v["reviews"][1]["rating"],
        json!({ "stars": 4, "color": "red" })
    );
    assert_eq!(
        reviews.get("/health").json(),
        json!({ "status": "Reviews is healthy" })
    );

    let productpage = Sample::start(&["productpage"], &[]);
    assert_eq!(productpage.get("/health").text(), "Product page is healthy");
    let products = productpage.get("/api/v1/products").json();
    assert_eq!(products[0]["id"], 0);
    assert_eq!(products[0]["title"], "The Comedy of Errors");
}

#[test]
fn productpage_gives_up_on_a_hanging_reviews_after_two_3s_tries() {
    // Accepts connections and never answers, like a fault-injected delay.
    let hang = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hang_port = hang.local_addr().unwrap().port();
    let details = Sample::start(&["details"], &[]);
    let mut env = upstream_env("details", details.port());
    env.extend(upstream_env("reviews", hang_port));
    let productpage = Sample::start(&["productpage"], &env);
    let start = std::time::Instant::now();
    let page = productpage.get("/productpage").text();
    let took = start.elapsed();
    assert!(page.contains("Error fetching product reviews!"), "{page}");
    assert!(page.contains("PublisherA"), "details still shown");
    assert!(
        took >= std::time::Duration::from_millis(5900) && took < std::time::Duration::from_secs(9),
        "two 3 s attempts, took {took:?}"
    );
    drop(hang);
}

#[test]
fn ratings_v_faulty_fails_about_half_the_calls() {
    let ratings = Sample::start(&["ratings", "--version", "v-faulty"], &[]);
    let mut ok = 0;
    let mut unavailable = 0;
    for _ in 0..60 {
        match ratings.get("/ratings/0").status {
            200 => ok += 1,
            503 => unavailable += 1,
            other => panic!("unexpected status {other}"),
        }
    }
    // Binomial(60, 0.5): outside 10..=50 has probability below 1e-7.
    assert!((10..=50).contains(&ok), "ok={ok} unavailable={unavailable}");
}
