// A label's text must live as long as the program: a borrowed `&str` is not.
#[telemark::counted(labels(route = route))]
fn serve(route: &str) -> usize {
    route.len()
}

fn main() {}
