//! What the Autometrics specification asks of the service name and of
//! `build_info`, read from the environment at start (its own test binary:
//! it sets process-wide environment variables, one step at a time).
#![cfg(not(feature = "disable-instrumentation"))]

use std::env;

fn build_info_line(text: &str) -> &str {
    text.lines()
        .find(|line| line.starts_with("build_info{"))
        .unwrap_or_else(|| panic!("no build_info in\n{text}"))
}

fn start(builder: telemark::telemetry::TelemetryBuilder) -> telemark::Telemetry {
    builder.without_server().start().unwrap()
}

#[test]
fn service_name_and_repository_follow_the_specification_order() {
    for name in [
        "AUTOMETRICS_SERVICE_NAME",
        "OTEL_SERVICE_NAME",
        "AUTOMETRICS_REPOSITORY_URL",
        "AUTOMETRICS_REPOSITORY_PROVIDER",
    ] {
        env::remove_var(name);
    }

    // Nothing set: the crate name, and no repository labels (this crate's
    // Cargo.toml names no repository).
    let telemetry = start(telemark::builder!());
    assert_eq!(telemetry.service_name(), "telemark");
    let text = telemetry.render_metrics();
    assert!(!build_info_line(&text).contains("repository"), "{text}");
    drop(telemetry);

    // OTEL_SERVICE_NAME alone names both; AUTOMETRICS_SERVICE_NAME wins for
    // the metrics.
    env::set_var("OTEL_SERVICE_NAME", "shop-otel");
    assert_eq!(start(telemark::builder!()).service_name(), "shop-otel");
    env::set_var("AUTOMETRICS_SERVICE_NAME", "shop");
    let telemetry = start(telemark::builder!());
    assert_eq!(telemetry.service_name(), "shop");
    assert!(build_info_line(&telemetry.render_metrics()).contains(r#"service_name="shop""#));
    drop(telemetry);
    // The code wins over both.
    assert_eq!(
        start(telemark::builder!().service_name("checkout")).service_name(),
        "checkout"
    );

    // The repository from the environment, its provider read off the URL.
    env::set_var("AUTOMETRICS_REPOSITORY_URL", "git@gitlab.com:acme/shop.git");
    let text = start(telemark::builder!()).render_metrics();
    let line = build_info_line(&text);
    assert!(
        line.contains(
            r#"repository_url="git@gitlab.com:acme/shop.git",repository_provider="gitlab""#
        ),
        "{line}"
    );
    // A provider given wins over the URL's host; an unknown host gives none.
    env::set_var("AUTOMETRICS_REPOSITORY_PROVIDER", "gitea");
    let text = start(telemark::builder!()).render_metrics();
    assert!(build_info_line(&text).contains(r#"repository_provider="gitea""#));
    env::remove_var("AUTOMETRICS_REPOSITORY_PROVIDER");
    env::set_var("AUTOMETRICS_REPOSITORY_URL", "https://git.example.com/shop");
    let text = start(telemark::builder!()).render_metrics();
    let line = build_info_line(&text);
    assert!(
        line.contains(r#"repository_url="https://git.example.com/shop""#)
            && !line.contains("repository_provider"),
        "{line}"
    );
    // The code wins over the environment; "" opts out.
    let text = start(
        telemark::builder!()
            .repository_url("https://www.github.com/acme/shop")
            .branch("main"),
    )
    .render_metrics();
    let line = build_info_line(&text);
    assert!(
        line.contains(r#"branch="main""#)
            && line.contains(
                r#"repository_url="https://www.github.com/acme/shop",repository_provider="github""#
            ),
        "{line}"
    );
    let text = start(telemark::builder!().repository_url("")).render_metrics();
    assert!(!build_info_line(&text).contains("repository"), "{text}");
}
