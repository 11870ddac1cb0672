#[telemark::counted(labels(__name__ = "x"))]
fn f() {}

fn main() {}
