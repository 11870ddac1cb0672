#[telemark::timed(ok_if = Result::is_ok)]
fn f() -> Result<(), ()> {
    Ok(())
}

fn main() {}
