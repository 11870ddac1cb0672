#[telemark::counted(name = "jobs", labels(result = "always_ok"))]
fn f() {}

fn main() {}
