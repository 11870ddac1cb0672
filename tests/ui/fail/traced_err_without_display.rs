#[derive(Debug)]
struct Failure;

#[telemark::traced(err)]
fn f() -> Result<(), Failure> {
    Err(Failure)
}

fn main() {}
