#[telemark::traced(fields(ids = vec![1, 2]))]
fn f() {}

fn main() {}
