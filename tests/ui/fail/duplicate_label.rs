#[telemark::counted(labels(team = "a", team = "b"))]
fn f() {}

fn main() {}
