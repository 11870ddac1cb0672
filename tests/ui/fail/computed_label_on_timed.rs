#[telemark::timed(labels(region = region))]
fn route(region: &'static str) -> &'static str {
    region
}

fn main() {}
