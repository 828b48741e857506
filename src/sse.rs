//! An incremental server-sent-events decoder.
//!
//! Bytes arrive in arbitrary chunks (a line, a UTF-8 sequence or a `\r\n` may be split
//! anywhere); [`Decoder::feed`] returns every event completed by the new bytes and keeps
//! the rest. It follows the WHATWG rules the SDKs use: lines end in `\n`, `\r\n` or `\r`;
//! a blank line dispatches; `data:` lines join with `\n`; one space after the colon is
//! dropped; lines starting with `:` are comments. [`Decoder::finish`] tells whether the
//! stream ended in the middle of an event, which a caller treats as truncation.

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Event {
    /// The `event:` field; `None` means the default type `message`.
    pub event: Option<String>,
    pub data: String,
    pub id: Option<String>,
}

#[derive(Debug, Default)]
pub struct Decoder {
    /// Bytes of the current, unfinished line.
    line: Vec<u8>,
    /// The previous chunk ended in `\r`: a `\n` starting the next chunk belongs to it.
    after_cr: bool,
    event: Option<String>,
    data: String,
    has_data: bool,
    id: Option<String>,
    /// Any field seen since the last dispatch.
    pending: bool,
}

impl Decoder {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        let mut events = Vec::new();
        let mut start = 0;
        let mut i = 0;
        if self.after_cr && chunk.first() == Some(&b'\n') {
            start = 1;
            i = 1;
        }
        self.after_cr = false;
        while i < chunk.len() {
            let b = chunk[i];
            if b == b'\n' || b == b'\r' {
                self.line.extend_from_slice(&chunk[start..i]);
                let line = std::mem::take(&mut self.line);
                self.process_line(&line, &mut events);
                if b == b'\r' {
                    if i + 1 < chunk.len() {
                        if chunk[i + 1] == b'\n' {
                            i += 1;
                        }
                    } else {
                        self.after_cr = true;
                    }
                }
                start = i + 1;
            }
            i += 1;
        }
        self.line.extend_from_slice(&chunk[start.min(chunk.len())..]);
        events
    }

    /// Ends the stream. Returns the last event if the stream ended without the blank
    /// line that dispatches it (lenient: some upstreams omit it) and whether bytes of
    /// an unfinished event were left.
    pub fn finish(&mut self) -> (Option<Event>, bool) {
        let mut events = Vec::new();
        if !self.line.is_empty() {
            let line = std::mem::take(&mut self.line);
            self.process_line(&line, &mut events);
        }
        let incomplete = self.pending;
        self.dispatch(&mut events);
        (events.pop(), incomplete)
    }

    fn process_line(&mut self, line: &[u8], events: &mut Vec<Event>) {
        if line.is_empty() {
            self.dispatch(events);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(p) => {
                let v = &line[p + 1..];
                (&line[..p], v.strip_prefix(b" ").unwrap_or(v))
            }
            None => (line, &[][..]),
        };
        let value = String::from_utf8_lossy(value);
        self.pending = true;
        match name {
            b"data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(&value);
                self.has_data = true;
            }
            b"event" => self.event = Some(value.into_owned()),
            b"id" if !value.contains('\0') => self.id = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, events: &mut Vec<Event>) {
        self.pending = false;
        let event = self.event.take();
        if !self.has_data {
            self.data.clear();
            return;
        }
        self.has_data = false;
        events.push(Event { event, data: std::mem::take(&mut self.data), id: self.id.clone() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(chunks: &[&[u8]]) -> Vec<Event> {
        let mut d = Decoder::new();
        let mut out: Vec<Event> = chunks.iter().flat_map(|c| d.feed(c)).collect();
        out.extend(d.finish().0);
        out
    }

    fn ev(event: Option<&str>, data: &str) -> Event {
        Event { event: event.map(String::from), data: data.into(), id: None }
    }

    #[test]
    fn decodes_events_comments_and_multiline_data() {
        let got = all(&[b": keepalive\n\nevent: ping\ndata: {\"a\":1}\n\ndata: x\ndata:y\n\n"]);
        assert_eq!(got, vec![ev(Some("ping"), "{\"a\":1}"), ev(None, "x\ny")]);
    }

    #[test]
    fn any_split_gives_the_same_events() {
        let text = "event: a\r\ndata: one\r\n\r\ndata: tw\u{e9}\r\rdata: three\n\n: c\n\n";
        let whole = all(&[text.as_bytes()]);
        assert_eq!(whole, vec![ev(Some("a"), "one"), ev(None, "tw\u{e9}"), ev(None, "three")]);
        let bytes = text.as_bytes();
        for split in 0..=bytes.len() {
            assert_eq!(all(&[&bytes[..split], &bytes[split..]]), whole, "split at {split}");
        }
        let singles: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(all(&singles), whole);
    }

    #[test]
    fn reports_truncation() {
        let mut d = Decoder::new();
        assert!(d.feed(b"data: complete\n\ndata: {\"par").len() == 1);
        let (last, incomplete) = d.finish();
        assert!(incomplete);
        assert_eq!(last.unwrap().data, "{\"par");
        let mut d = Decoder::new();
        d.feed(b"data: x\n\n");
        assert_eq!(d.finish(), (None, false));
    }

    #[test]
    fn event_name_does_not_leak_into_next_event() {
        let got = all(&[b"event: x\n\ndata: 1\n\n"]);
        assert_eq!(got, vec![ev(None, "1")]);
    }
}
