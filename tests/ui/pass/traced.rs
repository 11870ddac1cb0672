#![deny(warnings)]
use std::future::Future;
use std::pin::Pin;

use telemark::traced;

#[derive(Debug)]
struct Query {
    text: String,
}

#[traced(name = "load user", kind = client, fields(db.system = "postgres", rows = 3, user.id = id), args(id = display, query = debug), err, ret)]
fn load_user(id: u64, query: &Query) -> Result<String, std::num::ParseIntError> {
    let parsed: u64 = query.text.parse()?;
    Ok(format!("user {}", id + parsed))
}

/// A field expression may move what it captures: it runs once, when sampled.
#[traced(fields(label = label.unwrap_or_default()))]
fn moves_into_a_field(label: Option<String>) -> u32 {
    7
}

#[traced(err = debug)]
async fn fetch(id: u32) -> Result<u32, String> {
    if id == 0 {
        return Err("no id".into());
    }
    Ok(id)
}

#[traced(ret = display)]
fn returns_impl_future(x: u32) -> impl Future<Output = u32> + Send {
    async move { x + 1 }
}

struct Client;

#[traced(kind = server)]
impl Client {
    fn call<'a>(&'a self, x: u32) -> Pin<Box<dyn Future<Output = Result<u32, String>> + Send + 'a>> {
        Box::pin(async move { Ok(x) })
    }

    fn plain(&mut self) -> &mut Self {
        self
    }
}

#[traced]
fn generic<T: std::fmt::Debug>(value: T) -> String {
    format!("{value:?}")
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

fn assert_send<T: Send>(value: T) -> T {
    value
}

fn main() {
    let query = Query { text: "1".into() };
    assert_eq!(load_user(1, &query).unwrap(), "user 2");
    assert_eq!(block_on(assert_send(fetch(2))), Ok(2));
    assert_eq!(block_on(returns_impl_future(1)), 2);
    let mut client = Client;
    assert_eq!(block_on(client.call(3)), Ok(3));
    let _ = client.plain();
    assert_eq!(generic(1u8), "1");
    assert_eq!(moves_into_a_field(Some("x".to_owned())), 7);
}
