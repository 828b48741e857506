//! Small platform pieces the edge builds on, kept cheap because they run per request or
//! per streamed chunk: a little inline JS glue (the upstream fetch, headers, responses and
//! log lines, each crossing the wasm boundary once), a re-armable timer, a reader of JS
//! byte streams, and the runtime's native `IdentityTransformStream` that committed streams
//! are written into.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::rc::Rc;
use std::task::{Poll, Waker};

use js_sys::{Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

/// The runtime's per-request context (`waitUntil`).
pub type Ctx = worker::worker_sys::Context;

/// Keeps the request alive until `fut` is done, without delaying the response.
pub fn wait_until(ctx: &Ctx, fut: impl std::future::Future<Output = ()> + 'static) {
    let promise = wasm_bindgen_futures::future_to_promise(async move {
        fut.await;
        Ok(JsValue::UNDEFINED)
    });
    let _ = ctx.wait_until(&promise);
}

/// Glue that would cost many wasm↔JS crossings per request if written with web-sys
/// calls: header lists cross as one `\0`-separated string, and a callback the runtime
/// calls (abort, log) is plain JS instead of a wasm closure.
#[wasm_bindgen(inline_js = "
function headersOf(list) {
  const headers = new Headers();
  const parts = list.split('\0');
  for (let i = 0; i + 1 < parts.length; i += 2) headers.set(parts[i], parts[i + 1]);
  return headers;
}
export function upstreamFetch(url, headerList, body, callerSignal) {
  const controller = new AbortController();
  if (callerSignal.aborted) controller.abort();
  else callerSignal.addEventListener('abort', () => controller.abort(), { once: true });
  return [controller, fetch(url, { method: 'POST', headers: headersOf(headerList), body, signal: controller.signal })];
}
export function headerList(headers) {
  let list = '';
  for (const [name, value] of headers) list += name + '\0' + value + '\0';
  return list;
}
export function respond(body, status, headerList) {
  return new Response(body, { status, headers: headersOf(headerList) });
}
export function logSoon(ctx, line) {
  ctx.waitUntil(new Promise((done) => setTimeout(() => { console.log(line); done(); }, 0)));
}
")]
extern "C" {
    /// Starts `POST url` with the given headers and body; returns the fetch's
    /// `AbortController` (aborted too when the caller goes away) and its promise.
    #[wasm_bindgen(js_name = upstreamFetch, catch)]
    fn upstream_fetch_js(url: &str, header_list: &str, body: &Uint8Array, caller_signal: &web_sys::AbortSignal) -> Result<js_sys::Array, JsValue>;

    #[wasm_bindgen(js_name = headerList)]
    fn header_list_js(headers: &web_sys::Headers) -> String;

    #[wasm_bindgen(js_name = respond, catch)]
    fn respond_js(body: &JsValue, status: u16, header_list: &str) -> Result<web_sys::Response, JsValue>;

    /// Logs `line` a macrotask from now, from plain JS: the log neither delays the caller's
    /// bytes nor runs under the wasm call stack (wrangler dev's inspector captures the
    /// stack of every console call, so a deep one costs CPU per request).
    #[wasm_bindgen(js_name = logSoon)]
    pub fn log_soon(ctx: &Ctx, line: &str);
}

fn to_header_list<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> String {
    let mut list = String::new();
    for (name, value) in headers {
        list.push_str(name);
        list.push('\0');
        list.push_str(value);
        list.push('\0');
    }
    list
}

/// Starts an upstream `POST`; the controller aborts it (the caller leaving does too).
pub fn upstream_fetch(url: &str, headers: &[(String, String)], body: &[u8], caller_signal: &web_sys::AbortSignal) -> Result<(web_sys::AbortController, JsFuture), JsValue> {
    let list = to_header_list(headers.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    let pair = upstream_fetch_js(url, &list, &Uint8Array::from(body), caller_signal)?;
    Ok((pair.get(0).unchecked_into(), JsFuture::from(pair.get(1).unchecked_into::<Promise>())))
}

/// A JS `Headers` as name/value pairs (names lower case, as the runtime keeps them).
pub fn header_pairs(headers: &web_sys::Headers) -> Vec<(String, String)> {
    let list = header_list_js(headers);
    let mut parts = list.split('\0');
    let mut pairs = Vec::new();
    while let (Some(name), Some(value)) = (parts.next(), parts.next()) {
        pairs.push((name.to_string(), value.to_string()));
    }
    pairs
}

/// A response to hand the runtime; `body` is null, a `Uint8Array` or a `ReadableStream`.
pub fn respond<'a>(body: &JsValue, status: u16, headers: impl Iterator<Item = (&'a str, &'a str)>) -> Result<web_sys::Response, JsValue> {
    respond_js(body, status, &to_header_list(headers))
}

#[wasm_bindgen]
extern "C" {
    /// workerd's native byte pipe: bytes written to `writable` come out of `readable`
    /// without any JavaScript in between.
    pub type IdentityTransformStream;

    #[wasm_bindgen(constructor, catch)]
    pub fn new() -> Result<IdentityTransformStream, JsValue>;

    #[wasm_bindgen(method, getter)]
    pub fn readable(this: &IdentityTransformStream) -> web_sys::ReadableStream;

    #[wasm_bindgen(method, getter)]
    pub fn writable(this: &IdentityTransformStream) -> web_sys::WritableStream;

    /// What `ReadableStreamDefaultReader.read()` resolves to.
    type ReadResult;

    #[wasm_bindgen(method, getter)]
    fn done(this: &ReadResult) -> bool;

    #[wasm_bindgen(method, getter)]
    fn value(this: &ReadResult) -> JsValue;

    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &js_sys::Function, ms: f64) -> JsValue;

    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

struct TimerShared {
    fired: Cell<bool>,
    waker: RefCell<Option<Waker>>,
}

/// A timeout that can be re-armed and wakes whichever task polled it last (worker's
/// `Delay` keeps the waker of its first poll, and costs a new JS closure per use). One
/// JS closure serves every arming.
pub struct Timer {
    shared: Rc<TimerShared>,
    callback: Closure<dyn FnMut()>,
    /// The pending `setTimeout` handle and the time (ms) it fires at.
    armed: Option<(JsValue, u64)>,
}

impl Timer {
    pub fn new() -> Timer {
        let shared = Rc::new(TimerShared { fired: Cell::new(false), waker: RefCell::new(None) });
        let s = shared.clone();
        let callback = Closure::<dyn FnMut()>::new(move || {
            s.fired.set(true);
            if let Some(waker) = s.waker.borrow_mut().take() {
                waker.wake();
            }
        });
        Timer { shared, callback, armed: None }
    }

    /// Makes sure the timer fires no later than `at_ms` (absolute, same clock as `now_ms`).
    /// An earlier pending arming is kept: the owner re-checks its deadlines when it fires.
    pub fn fire_by(&mut self, at_ms: u64, now_ms: u64) {
        if let Some((_, due)) = &self.armed {
            if *due <= at_ms && !self.shared.fired.get() {
                return;
            }
        }
        self.disarm();
        let handle = set_timeout(self.callback.as_ref().unchecked_ref(), at_ms.saturating_sub(now_ms) as f64);
        self.armed = Some((handle, at_ms));
    }

    pub fn disarm(&mut self) {
        if let Some((handle, _)) = self.armed.take() {
            if !self.shared.fired.get() {
                clear_timeout(&handle);
            }
        }
        self.shared.fired.set(false);
    }

    /// Ready once the armed time has passed; the timer is then unarmed.
    pub fn poll_fired(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        if self.shared.fired.get() {
            self.armed = None;
            self.shared.fired.set(false);
            return Poll::Ready(());
        }
        if self.armed.is_none() {
            return Poll::Pending;
        }
        let mut slot = self.shared.waker.borrow_mut();
        if !slot.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
            *slot = Some(cx.waker().clone());
        }
        Poll::Pending
    }
}

impl Drop for Timer {
    fn drop(&mut self) {
        // Never leave JS a callback to a freed closure.
        self.disarm();
    }
}

/// Awaits `fut`, giving up with `None` when `timer` fires first.
pub async fn before<F: std::future::Future + Unpin>(mut fut: F, timer: &mut Timer) -> Option<F::Output> {
    poll_fn(|cx| {
        if let Poll::Ready(v) = std::pin::Pin::new(&mut fut).poll(cx) {
            return Poll::Ready(Some(v));
        }
        timer.poll_fired(cx).map(|()| None)
    })
    .await
}

/// Waits `ms` milliseconds.
pub async fn sleep(ms: u64) {
    let mut timer = Timer::new();
    let now = super::now_ms();
    timer.fire_by(now + ms, now);
    poll_fn(|cx| timer.poll_fired(cx)).await
}

/// A JS error's message (or its string form).
pub fn describe(e: &JsValue) -> String {
    match e.dyn_ref::<js_sys::Error>() {
        Some(error) => String::from(error.message()),
        None => e.as_string().unwrap_or_else(|| "unknown error".into()),
    }
}

/// Reads a JS `ReadableStream` of bytes chunk by chunk.
pub struct ByteReader {
    reader: web_sys::ReadableStreamDefaultReader,
}

impl ByteReader {
    pub fn new(stream: &web_sys::ReadableStream) -> Result<ByteReader, JsValue> {
        let reader = stream.get_reader().dyn_into::<web_sys::ReadableStreamDefaultReader>()?;
        Ok(ByteReader { reader })
    }

    /// The next read, as a future to await or race (`Ok(None)` at the end).
    pub fn read(&self) -> ReadFuture {
        ReadFuture(JsFuture::from(self.reader.read()))
    }

    /// Stops reading (the producer is told to stop); errors are ignored.
    pub fn cancel(&self) {
        ignore_rejection(&self.reader.cancel());
    }
}

pub struct ReadFuture(JsFuture);

impl std::future::Future for ReadFuture {
    type Output = Result<Option<Vec<u8>>, JsValue>;

    fn poll(mut self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        std::pin::Pin::new(&mut self.0).poll(cx).map(|r| {
            let result: ReadResult = r?.unchecked_into();
            if result.done() {
                return Ok(None);
            }
            Ok(Some(result.value().dyn_into::<Uint8Array>()?.to_vec()))
        })
    }
}

thread_local! {
    static IGNORE: Closure<dyn FnMut(JsValue)> = Closure::new(|_: JsValue| {});
}

/// Marks a promise's rejection as handled (one shared no-op handler, nothing leaked).
pub fn ignore_rejection(promise: &Promise) {
    IGNORE.with(|f| {
        let _ = promise.catch(f);
    });
}

/// A writer into a native byte pipe whose readable side becomes a response body.
pub struct PipeWriter {
    writer: web_sys::WritableStreamDefaultWriter,
    /// The last write, awaited before the next one so at most one chunk is in flight.
    in_flight: Option<JsFuture>,
}

impl PipeWriter {
    /// A pipe: the writer, and the stream to answer with.
    pub fn new() -> Result<(PipeWriter, web_sys::ReadableStream), JsValue> {
        let pipe = IdentityTransformStream::new()?;
        let writer = pipe.writable().get_writer()?;
        Ok((PipeWriter { writer, in_flight: None }, pipe.readable()))
    }

    /// Queues `bytes` once the previous write went through; `Err` when the caller is gone.
    pub async fn write(&mut self, bytes: &[u8]) -> Result<(), JsValue> {
        if let Some(previous) = self.in_flight.take() {
            previous.await?;
        }
        let chunk = Uint8Array::from(bytes);
        self.in_flight = Some(JsFuture::from(self.writer.write_with_chunk(&chunk)));
        Ok(())
    }

    /// Queues the first bytes without waiting (before any other write).
    pub fn start(&mut self, bytes: &[u8]) {
        let chunk = Uint8Array::from(bytes);
        self.in_flight = Some(JsFuture::from(self.writer.write_with_chunk(&chunk)));
    }

    /// Ends the body after the last write.
    pub async fn close(mut self) {
        if let Some(previous) = self.in_flight.take() {
            if previous.await.is_err() {
                return;
            }
        }
        ignore_rejection(&self.writer.close());
    }
}
