#![deny(warnings)]
use std::future::Future;

use telemark::{counted, timed};

struct Named {
    name: String,
}

#[counted]
impl Named {
    /// An early `return` that needs a coercion (`&String` to `&str`).
    fn name_or_default(&self, use_name: bool) -> &str {
        if use_name {
            return &self.name;
        }
        "default"
    }

    async fn name_later(&self, use_name: bool) -> &str {
        if use_name {
            return &self.name;
        }
        "default"
    }
}

#[counted]
fn boxed_error(fail: bool) -> Result<u8, Box<dyn std::error::Error>> {
    if fail {
        return Err(Box::new(std::fmt::Error));
    }
    Ok(1)
}

#[counted]
fn boxed_trait_object(empty: bool) -> Box<dyn std::fmt::Display> {
    if empty {
        return Box::new("");
    }
    Box::new(42)
}

/// A unit function that never returns normally.
#[counted]
#[timed]
fn serve_forever() {
    loop {
        std::thread::park();
    }
}

#[counted]
#[allow(unreachable_code)]
fn not_written_yet() -> u32 {
    todo!()
}

#[timed]
fn one_line() -> u32 {
    1
}

#[timed]
#[track_caller]
fn caller_line() -> u32 {
    std::panic::Location::caller().line()
}

#[timed]
#[counted]
fn timed_outside_counted(x: u32) -> Result<u32, String> {
    Ok(x)
}

#[counted]
fn r#match(x: u32) -> u32 {
    x
}

#[counted]
fn impl_trait_argument(items: impl IntoIterator<Item = u32>) -> u32 {
    items.into_iter().sum()
}

#[counted]
#[timed]
fn unpin_future(x: u32) -> impl Future<Output = u32> + Unpin {
    std::future::ready(x)
}

struct Worker;

#[counted]
impl Worker {
    #[timed]
    fn both_levels(&self) -> u8 {
        7
    }
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn main() {
    let named = Named { name: "n".into() };
    assert_eq!(named.name_or_default(true), "n");
    assert_eq!(named.name_or_default(false), "default");
    assert_eq!(block_on(named.name_later(true)), "n");
    assert!(boxed_error(true).is_err());
    assert_eq!(boxed_trait_object(false).to_string(), "42");
    let _never_called: fn() = serve_forever;
    std::panic::set_hook(Box::new(|_| {}));
    assert!(std::panic::catch_unwind(not_written_yet).is_err());
    let _ = std::panic::take_hook();
    assert_eq!(one_line(), 1);
    let expected_line = line!() + 1;
    assert_eq!(caller_line(), expected_line, "#[track_caller] still works with #[timed]");
    assert_eq!(timed_outside_counted(3), Ok(3));
    assert_eq!(r#match(2), 2);
    assert_eq!(impl_trait_argument([1, 2, 3]), 6);
    let future = unpin_future(5);
    fn assert_unpin<T: Unpin>(_: &T) {}
    assert_unpin(&future);
    assert_eq!(block_on(future), 5);
    assert_eq!(Worker.both_levels(), 7);
    let names: Vec<_> = telemark::catalog::instrumented_functions()
        .into_iter()
        .map(|f| f.function)
        .collect();
    assert!(names.contains(&"match"), "raw identifiers lose their r#: {names:?}");
    let both = telemark::catalog::instrumented_functions()
        .into_iter()
        .find(|f| f.function == "Worker::both_levels")
        .expect("a method-level attribute in an annotated impl is named Type::method");
    assert_eq!(both.attributes, vec!["counted", "timed"]);
}
