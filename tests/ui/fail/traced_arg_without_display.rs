struct Secret;

#[telemark::traced(args(secret = display))]
fn f(secret: Secret) {
    let _ = secret;
}

fn main() {}
