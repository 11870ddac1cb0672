#[telemark::timed(name = "latency_seconds_count")]
fn f() {}

fn main() {}
