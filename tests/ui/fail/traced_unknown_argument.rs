#[telemark::traced(level = "info")]
fn f() {}

fn main() {}
