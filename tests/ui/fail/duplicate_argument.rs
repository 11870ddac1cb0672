#[telemark::timed(name = "a_seconds", name = "b_seconds")]
fn f() {}

fn main() {}
