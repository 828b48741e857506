//! Arbitrary request bodies through every client-protocol decoder and, when one
//! decodes, through every egress encoder: nothing may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_gateway::config::{ModelOptions, Quirks};
use llm_gateway::json_fields::JsonObject;
use llm_gateway::protocols::{self, Protocol, Target};

const ALL: [Protocol; 4] = [Protocol::OpenAiChat, Protocol::OpenAiResponses, Protocol::Claude, Protocol::Gemini];

fuzz_target!(|data: &[u8]| {
    if let Ok(obj) = JsonObject::parse(data) {
        let _ = obj.with_field("model", "\"m\"");
    }
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else { return };
    let options = ModelOptions::default();
    let target = Target { model: "m", options: &options, quirks: Quirks::default() };
    for client in ALL {
        let _ = protocols::without_packed_reasoning(client, data);
        if let Ok(req) = protocols::decode_request(client, &value) {
            for upstream in ALL {
                let _ = protocols::encode_request(upstream, &req, &target);
            }
        }
        let meta = llm_gateway::ir::ResponseMeta { id: "f".into(), model: "p.m".into(), created: 0 };
        if let Ok(resp) = protocols::decode_response(client, &value, meta) {
            for out in ALL {
                let _ = protocols::encode_response(out, &resp, &Default::default());
            }
        }
    }
});
