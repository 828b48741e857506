//! Arbitrary upstream stream bytes, split at an arbitrary point, through every
//! upstream-decoder × client-encoder pair: nothing may panic.
#![no_main]
use libfuzzer_sys::fuzz_target;
use llm_gateway::convert::{Conversion, StreamConverter};
use llm_gateway::ir::ResponseMeta;
use llm_gateway::protocols::{EncodeOptions, Protocol, StreamFraming};

const ALL: [Protocol; 4] = [Protocol::OpenAiChat, Protocol::OpenAiResponses, Protocol::Claude, Protocol::Gemini];

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let upstream = ALL[(data[0] % 4) as usize];
    let split = if data.len() > 1 { data[1] as usize % data.len() } else { 0 };
    let body = &data[2.min(data.len())..];
    for client in ALL {
        let c = Conversion {
            client,
            upstream,
            meta: ResponseMeta { id: "f".into(), model: "p.m".into(), created: 0 },
            options: EncodeOptions { include_usage: true, ..EncodeOptions::default() },
            framing: if data[0] & 4 == 0 { StreamFraming::Sse } else { StreamFraming::JsonArray },
            stream: true,
            count: false,
            hide_reasoning: false,
            dropped_tools: Vec::new(),
            tool_names: Vec::new(),
        };
        let mut conv = StreamConverter::new(&c);
        let cut = split.min(body.len());
        let _ = conv.feed(&body[..cut]);
        let _ = conv.feed(&body[cut..]);
        let _ = conv.finish();
        let _ = llm_gateway::convert::convert_body(&c, body);
    }
});
