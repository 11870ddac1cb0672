#![deny(warnings)]
use telemark::{counted, timed};

/// Doc comments and other attributes are kept.
#[counted]
#[timed]
#[inline]
#[must_use]
fn add(a: u32, b: u32) -> u32 {
    a + b
}

#[counted]
fn unit() {}

#[counted]
#[timed]
fn early_return_and_question_mark(input: &str) -> Result<u32, Box<dyn std::error::Error>> {
    if input.is_empty() {
        return Ok(0);
    }
    let parsed: u32 = input.parse()?;
    Ok(parsed * 2)
}

#[counted]
fn with_lifetimes<'a, 'b: 'a>(first: &'a str, _second: &'b str) -> &'a str {
    first
}

#[counted]
#[timed]
fn generic_with_where<T, U>(value: T, other: U) -> String
where
    T: std::fmt::Display,
    U: std::fmt::Debug,
{
    format!("{value}/{other:?}")
}

#[counted]
fn returns_impl_trait(n: u32) -> impl Iterator<Item = u32> {
    (0..n).map(|i| i * i)
}

#[counted]
fn mutable_and_pattern_arguments(mut count: u32, (a, b): (u32, u32)) -> u32 {
    count += a + b;
    count
}

/// # Safety
/// `pointer` must be valid for reads.
#[counted]
#[timed]
unsafe fn read(pointer: *const u32) -> u32 {
    unsafe { *pointer }
}

#[counted]
extern "C" fn c_abi(x: i32) -> i32 {
    x + 1
}

#[counted]
fn never_returns_normally(fail: bool) -> Result<(), String> {
    if fail {
        Err("failed".to_owned())
    } else {
        loop {
            return Ok(());
        }
    }
}

#[counted]
pub(crate) fn borrowed_mut(values: &mut Vec<u32>) -> &mut u32 {
    values.push(1);
    values.last_mut().unwrap()
}

#[counted]
#[timed]
fn result_of_impl_trait(input: &str) -> Result<impl std::fmt::Display, std::num::ParseIntError> {
    let value: u32 = input.parse()?;
    Ok(value + 1)
}

#[counted]
#[timed]
fn diverges(message: &str) -> ! {
    panic!("{message}")
}

fn main() {
    assert_eq!(add(1, 2), 3);
    unit();
    assert_eq!(early_return_and_question_mark("").unwrap(), 0);
    assert_eq!(early_return_and_question_mark("21").unwrap(), 42);
    assert!(early_return_and_question_mark("x").is_err());
    assert_eq!(with_lifetimes("a", "b"), "a");
    assert_eq!(generic_with_where(1, "x"), "1/\"x\"");
    assert_eq!(returns_impl_trait(3).collect::<Vec<_>>(), vec![0, 1, 4]);
    assert_eq!(mutable_and_pattern_arguments(1, (2, 3)), 6);
    let value = 7;
    assert_eq!(unsafe { read(&value) }, 7);
    assert_eq!(c_abi(1), 2);
    assert!(never_returns_normally(true).is_err());
    assert!(never_returns_normally(false).is_ok());
    let mut values = Vec::new();
    *borrowed_mut(&mut values) += 1;
    assert_eq!(values, vec![2]);
    assert_eq!(result_of_impl_trait("1").unwrap().to_string(), "2");
    assert!(result_of_impl_trait("x").is_err());
    std::panic::set_hook(Box::new(|_| {}));
    let panicked = std::panic::catch_unwind(|| diverges("stop"));
    let _ = std::panic::take_hook();
    assert!(panicked.is_err());
    let diverging = telemark::catalog::instrumented_functions()
        .into_iter()
        .find(|f| f.function == "diverges")
        .unwrap();
    assert_eq!((diverging.calls, diverging.errors), (1, 1));
    let functions = telemark::catalog::instrumented_functions();
    assert_eq!(functions.len(), 13);
    assert!(functions.iter().all(|f| f.calls > 0), "{functions:?}");
}
