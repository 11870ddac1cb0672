struct Cart(Vec<u32>);

impl Cart {
    // Autometrics labels methods `Type::method`; the attribute sees only
    // the method.
    #[telemark::counted]
    fn total(&self) -> u32 {
        self.0.iter().sum()
    }

    #[telemark::timed]
    fn new() -> Self {
        Cart(Vec::new())
    }
}

fn main() {
    assert_eq!(Cart::new().total(), 0);
}
