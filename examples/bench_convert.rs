//! Native conversion throughput, per protocol pair, on a long streamed answer.
//!
//! For each upstream protocol a long stream (reasoning, 4,000 text deltas, a tool call
//! with streamed arguments, usage) is produced by that protocol's own encoder. Each pair
//! then runs it through the gateway's StreamConverter (SSE decode → upstream decoder → IR →
//! client encoder), fed in 1,400-byte pieces as a network would deliver it. The baseline
//! is serde_json parsing and re-serialising every event payload of the same bytes. Prints
//! MB/s and the ratio converter time / baseline time.
//!
//! Then a large agent request (a Chat body of ~470 KB: a long system prompt and 200 turns of
//! tool calls and results, like a long Claude Code or Codex session) is converted for each
//! other upstream protocol: body → IR → upstream body bytes, against serde_json parsing and
//! re-serialising the same body. Run:
//!     cargo run --release --example bench_convert
use std::time::Instant;

use llm_gateway::convert::{Conversion, StreamConverter};
use llm_gateway::ir::{Reasoning, ResponseMeta, StopReason, StreamEvent, Usage};
use llm_gateway::protocols::{self, EncodeOptions, Protocol, StreamFraming};

const ALL: [Protocol; 4] = [Protocol::OpenAiChat, Protocol::OpenAiResponses, Protocol::Claude, Protocol::Gemini];

fn meta() -> ResponseMeta {
    ResponseMeta { id: "bench".into(), model: "p.m".into(), created: 1_700_000_000 }
}

fn long_stream(upstream: Protocol) -> Vec<u8> {
    let mut events = vec![StreamEvent::Start { meta: meta(), input_tokens: 1200 }];
    for i in 0..200 {
        events.push(StreamEvent::ReasoningDelta(format!("thinking step {i} about the question. ")));
    }
    events.push(StreamEvent::ReasoningEnd(Reasoning {
        signature: Some("EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds".repeat(4)),
        origin: Some(upstream),
        ..Default::default()
    }));
    for i in 0..4000 {
        events.push(StreamEvent::TextDelta(format!("word{i} é ")));
    }
    events.push(StreamEvent::ToolCallStart { id: "call_1".into(), name: "get_weather".into() });
    for _ in 0..50 {
        events.push(StreamEvent::ToolCallDelta("{\"city\":\"Paris\"".into()));
    }
    events.push(StreamEvent::ToolCallDelta("}".into()));
    events.push(StreamEvent::Finish {
        stop: StopReason::ToolUse,
        usage: Usage { input_tokens: 1200, output_tokens: 9000, cache_read_tokens: 100, cache_write_tokens: 0, reasoning_tokens: 800 },
    });
    let mut enc = protocols::stream_encoder(upstream, EncodeOptions { include_usage: true, ..EncodeOptions::default() }, StreamFraming::Sse);
    let mut out = Vec::new();
    for e in &events {
        enc.event(e, &mut out);
    }
    out
}

fn baseline(bytes: &[u8]) -> usize {
    let mut dec = llm_gateway::sse::Decoder::new();
    let mut n = 0;
    for e in dec.feed(bytes) {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&e.data) {
            n += serde_json::to_string(&v).map(|s| s.len()).unwrap_or(0);
        }
    }
    n
}

fn convert(bytes: &[u8], c: &Conversion) -> usize {
    let mut conv = StreamConverter::new(c);
    let mut n = 0;
    for piece in bytes.chunks(1400) {
        n += conv.feed(piece).len();
    }
    n + conv.finish().len()
}

fn time<F: FnMut() -> usize>(mut f: F) -> f64 {
    // Best of several runs of enough iterations to take ~50 ms each.
    let mut iters = 1;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(f());
        }
        if t.elapsed().as_secs_f64() > 0.05 {
            break;
        }
        iters *= 2;
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                std::hint::black_box(f());
            }
            t.elapsed().as_secs_f64() / iters as f64
        })
        .fold(f64::MAX, f64::min)
}

fn main() {
    println!("{:<18} {:<18} {:>9} {:>10} {:>12} {:>7}", "upstream", "client", "bytes", "MB/s", "serde MB/s", "ratio");
    let mut worst: f64 = 0.0;
    for upstream in ALL {
        let bytes = long_stream(upstream);
        let base = time(|| baseline(&bytes));
        for client in ALL {
            let c = Conversion { client, upstream, meta: meta(), options: EncodeOptions { include_usage: true, ..EncodeOptions::default() }, framing: StreamFraming::Sse, stream: true, count: false, hide_reasoning: false, dropped_tools: Vec::new(), tool_names: Vec::new() };
            let t = time(|| convert(&bytes, &c));
            let mbs = |secs: f64| bytes.len() as f64 / secs / 1e6;
            worst = worst.max(t / base);
            println!("{:<18} {:<18} {:>9} {:>10.1} {:>12.1} {:>6.2}x", upstream.name(), client.name(), bytes.len(), mbs(t), mbs(base), t / base);
        }
    }
    println!("worst ratio converter/serde_json: {worst:.2}x (target <= 3x)");

    let body = agent_request();
    let base = time(|| serde_json::to_vec(&serde_json::from_slice::<serde_json::Value>(&body).unwrap_or_default()).map_or(0, |b| b.len()));
    println!("\nlarge request, {} KB of Chat body; serde_json parse + serialise {:.2} ms", body.len() / 1024, base * 1e3);
    let options = llm_gateway::config::ModelOptions::default();
    let target = protocols::Target { model: "upstream-model", options: &options, quirks: Default::default() };
    for upstream in [Protocol::OpenAiResponses, Protocol::Claude, Protocol::Gemini] {
        let t = time(|| {
            let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
            let ir = protocols::decode_request(Protocol::OpenAiChat, &value).expect("the request decodes");
            let out = protocols::encode_request(upstream, &ir, &target).expect("the request encodes");
            serde_json::to_vec(&out).map_or(0, |b| b.len())
        });
        println!("chat -> {:<24} {:>8.2} ms {:>6.2}x", upstream.name(), t * 1e3, t / base);
    }
    // What every same-protocol request pays to learn it holds no packed reasoning.
    let t = time(|| usize::from(protocols::without_packed_reasoning(Protocol::OpenAiChat, &body).is_some()));
    println!("chat -> chat, packed-reasoning scan {:>11.3} ms {:>6.3}x", t * 1e3, t / base);
}

fn agent_request() -> Vec<u8> {
    use serde_json::json;
    let mut messages = vec![json!({"role": "system", "content": "You are a coding agent. ".repeat(400)})];
    for i in 0..200 {
        messages.push(json!({"role": "user", "content": format!("step {i}: {}", "look at the file and fix the bug. ".repeat(10))}));
        let call = json!({"id": format!("call_{i}"), "type": "function", "function": {"name": "read_file", "arguments": format!("{{\"path\":\"src/file_{i}.rs\"}}")}});
        messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]}));
        messages.push(json!({"role": "tool", "tool_call_id": format!("call_{i}"), "content": "fn main() {\n    println!(\"hello\");\n}\n".repeat(40)}));
    }
    let tools = [json!({"type": "function", "function": {"name": "read_file", "description": "Reads a file",
        "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}})];
    serde_json::to_vec(&json!({"model": "m", "messages": messages, "tools": tools, "stream": true})).unwrap_or_default()
}
