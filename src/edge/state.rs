//! The Durable Object that shares breaker and key-cooldown state across isolates
//! (`stateBinding` in ANY_API_CONFIG), and the isolate side of the sync.

use std::cell::RefCell;

use wasm_bindgen::JsValue;
use worker::{console_log, durable_object, DurableObject, Env, Method, Request, RequestInit, Response, State};

use super::HEALTH;
use crate::attempts::Health;

/// The shared breaker and key-cooldown state (`stateBinding`): isolates push their view
/// after a request that changed it and pull the merged view every few seconds, both in
/// `waitUntil`, so the happy path never waits on it.
#[durable_object]
pub struct GatewayState {
    health: RefCell<Health>,
}

impl DurableObject for GatewayState {
    fn new(_state: State, _env: Env) -> Self {
        GatewayState { health: RefCell::new(Health::default()) }
    }

    async fn fetch(&self, mut req: Request) -> worker::Result<Response> {
        if req.method() == Method::Post {
            let body = req.bytes().await?;
            if let Ok(theirs) = serde_json::from_slice::<Health>(&body) {
                self.health.borrow_mut().merge(&theirs);
            }
        }
        let text = serde_json::to_string(&*self.health.borrow()).unwrap_or_default();
        Response::ok(text)
    }
}

/// Pushes this isolate's state (or only pulls, with `push` false) and merges the answer.
pub async fn sync_state(env: Env, binding: String, push: bool) {
    let result: worker::Result<()> = async {
        let stub = env.durable_object(&binding)?.id_from_name("gateway-state")?.get_stub()?;
        let mut init = RequestInit::new();
        if push {
            let body = HEALTH.with(|h| serde_json::to_string(&*h.borrow()).unwrap_or_default());
            init.with_method(Method::Post).with_body(Some(JsValue::from_str(&body)));
        }
        let req = Request::new_with_init("https://gateway-state/sync", &init)?;
        let mut resp = stub.fetch_with_request(req).await?;
        let text = resp.text().await?;
        if let Ok(theirs) = serde_json::from_str::<Health>(&text) {
            HEALTH.with(|h| h.borrow_mut().merge(&theirs));
        }
        Ok(())
    }
    .await;
    if let Err(e) = result {
        console_log!("{}", serde_json::json!({"stateSync": "failed", "binding": binding, "error": e.to_string()}));
    }
}

