//! Two attributes of different kinds naming one family: `start()` refuses
//! it, naming both functions (`/metrics` cannot show one name as two
//! families). Its own test binary: every `start()` in it fails.
#![cfg(not(feature = "disable-instrumentation"))]

#[telemark::histogram(name = "queue_depth", value = depth, buckets = [1, 10])]
fn enqueue(depth: usize) -> usize {
    depth
}

#[telemark::gauge(name = "queue_depth", value = |depth| *depth)]
fn drain() -> usize {
    0
}

#[test]
fn a_family_named_by_two_kinds_of_attribute_is_refused() {
    assert_eq!(enqueue(1) + drain(), 1);
    let error = telemark::builder!()
        .without_server()
        .metrics_recorder(false)
        .start()
        .expect_err("the clash is refused");
    let text = error.to_string();
    assert!(text.contains("queue_depth"), "{text}");
    assert!(text.contains("#[histogram] on `enqueue`"), "{text}");
    assert!(text.contains("#[gauge] on `drain`"), "{text}");
}
