#[telemark::counted(labels(result = "always_ok"))]
fn f() {}

fn main() {}
