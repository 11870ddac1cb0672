#[telemark::counted(labels())]
fn f() {}

fn main() {}
