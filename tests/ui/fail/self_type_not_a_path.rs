struct Cart;

impl Cart {
    #[telemark::counted(self_type = "Cart")]
    fn total(&self) -> u32 {
        0
    }
}

fn main() {
    assert_eq!(Cart.total(), 0);
}
