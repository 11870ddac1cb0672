#![deny(warnings)]
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

use telemark::{counted, timed};

#[counted]
#[timed]
async fn fetch(id: u32) -> Result<u32, String> {
    if id == 0 {
        return Err("no id".into());
    }
    let doubled = double(id).await?;
    Ok(doubled)
}

#[counted]
async fn double(x: u32) -> Result<u32, String> {
    x.checked_mul(2).ok_or_else(|| "overflow".to_owned())
}

#[counted]
#[timed]
fn returns_impl_future(x: u32) -> impl Future<Output = Result<u32, String>> + Send {
    async move { Ok(x + 1) }
}

struct Client {
    base: u32,
}

trait Service {
    fn call<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send + 'a>>;
    async fn ping(&self) -> bool;
}

/// What `#[async_trait]` produces from an `async fn` in a trait impl.
#[counted]
#[timed]
impl Service for Client {
    fn call<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send + 'a>> {
        Box::pin(async move { Ok(self.base + x) })
    }

    async fn ping(&self) -> bool {
        true
    }
}

#[counted]
impl Client {
    async fn borrow_name<'a>(&'a self, name: &'a str) -> &'a str {
        let _ = self.base;
        name
    }
}

/// Polls a future that never waits to completion.
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    assert_eq!(block_on(assert_send(fetch(2))), Ok(4));
    assert!(block_on(fetch(0)).is_err());
    assert_eq!(block_on(returns_impl_future(1)), Ok(2));
    let client = Client { base: 10 };
    assert_eq!(block_on(client.call(5)), Ok(15));
    assert!(block_on(client.ping()));
    assert_eq!(block_on(client.borrow_name("n")), "n");
    let fetch_stats = telemark::catalog::instrumented_functions()
        .into_iter()
        .find(|f| f.function == "fetch")
        .unwrap();
    assert_eq!((fetch_stats.calls, fetch_stats.errors), (2, 1));
}
