#![deny(warnings)]
use telemark::{counted, timed};

struct Counter {
    value: u64,
    name: String,
}

#[counted]
#[timed]
impl Counter {
    fn new(name: &str) -> Self {
        Counter {
            value: 0,
            name: name.to_owned(),
        }
    }

    fn get(&self) -> u64 {
        self.value
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn value_mut(&mut self) -> &mut u64 {
        &mut self.value
    }

    fn bump(&mut self) -> Result<u64, String> {
        self.value = self.value.checked_add(1).ok_or("overflow")?;
        Ok(self.value)
    }

    fn into_value(self) -> u64 {
        self.value
    }

    fn boxed(self: Box<Self>) -> u64 {
        self.value
    }

    const fn zero() -> u64 {
        0
    }
}

trait Shape {
    fn area(&self) -> f64;
    fn scale(&mut self, by: f64) -> Result<(), String>;
}

struct Square<T>(T);

#[counted]
impl<T: Into<f64> + Copy> Shape for Square<T> {
    fn area(&self) -> f64 {
        let side: f64 = self.0.into();
        side * side
    }

    fn scale(&mut self, by: f64) -> Result<(), String> {
        if by <= 0.0 {
            return Err("scale must be positive".into());
        }
        Ok(())
    }
}

struct Single;

impl Single {
    /// An attribute on one method cannot see the impl block: the type is
    /// named on the attribute.
    #[counted(self_type = Single)]
    fn alone(&self) -> u8 {
        1
    }

    /// A typed receiver names the type itself.
    #[timed]
    fn typed(self: Box<Single>) -> u8 {
        2
    }

    /// Neither a receiver nor `Self`: indistinguishable from a free function.
    #[counted]
    fn helper() -> u8 {
        3
    }
}

fn main() {
    let mut counter = Counter::new("c");
    assert_eq!(counter.bump(), Ok(1));
    *counter.value_mut() += 10;
    assert_eq!(counter.get(), 11);
    assert_eq!(counter.name(), "c");
    assert_eq!(Counter::zero(), 0);
    assert_eq!(Box::new(Counter::new("b")).boxed(), 0);
    assert_eq!(counter.into_value(), 11);
    let mut square = Square(2.0f32);
    assert_eq!(square.area(), 4.0);
    assert!(square.scale(0.0).is_err());
    assert_eq!(Single.alone(), 1);
    assert_eq!(Box::new(Single).typed(), 2);
    assert_eq!(Single::helper(), 3);
    let names: Vec<_> = telemark::catalog::instrumented_functions()
        .into_iter()
        .map(|f| f.function)
        .collect();
    for expected in [
        "Counter::new",
        "Counter::value_mut",
        "Square::area",
        "Single::alone",
        "Single::typed",
        "helper",
    ] {
        assert!(names.contains(&expected), "{expected} in {names:?}");
    }
    assert!(!names.contains(&"Counter::zero"), "const fns are skipped");
}
