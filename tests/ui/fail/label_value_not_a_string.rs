#[telemark::counted(labels(team = 5))]
fn f() {}

fn main() {}
