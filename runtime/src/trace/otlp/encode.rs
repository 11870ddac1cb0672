//! OTLP trace requests encoded straight from span records: the protobuf
//! bytes of an `ExportTraceServiceRequest`, written field by field into one
//! buffer per batch. No `SpanData`, no OTLP message structs, and no
//! per-span allocation (but for a span's non-empty `tracestate`, rendered
//! as text): what is the same for every span of a call site (its name,
//! `code.*` attributes, kind) is read from the site's `static`, and the
//! resource and scope are encoded once.
//!
//! Field numbers are those of `opentelemetry/proto/trace/v1/trace.proto`
//! and `common/v1/common.proto`; the unit tests decode the output with
//! `opentelemetry-proto`'s generated types.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use bytes::Bytes;
use opentelemetry::trace::{Link, TraceState};
use opentelemetry::{Array, KeyValue, Value};
use opentelemetry_sdk::Resource;
use prost::encoding::encoded_len_varint;

use crate::clock::{unix_nanos, WallClock};
use crate::trace::span::{EventTime, FinalStatus, Kind, SpanExtra, SpanRecord, TraceSite};

/// Protobuf wire types.
const VARINT: u8 = 0;
const FIXED64: u8 = 1;
const LENGTH_DELIMITED: u8 = 2;
const FIXED32: u8 = 5;

/// `Span.flags`: the parent's remoteness is known (bit 8), and is remote
/// (bit 9); the low byte holds the W3C trace flags (sampled).
const FLAG_SAMPLED: u32 = 0x01;
const FLAG_HAS_IS_REMOTE: u32 = 0x100;
const FLAG_IS_REMOTE: u32 = 0x200;

/// A batch of spans being encoded as one `ExportTraceServiceRequest`.
pub(crate) struct TraceRequestEncoder {
    /// The resource's fields and the schema URL (inside `ResourceSpans`,
    /// before its `scope_spans`).
    resource_part: Vec<u8>,
    /// The instrumentation scope (inside `ScopeSpans`, before its spans).
    scope_part: Vec<u8>,
    /// Room kept at the front of `buffer` for the request's headers, which
    /// are written last (they hold the lengths of everything after them).
    header_room: usize,
    /// The request: `header_room` bytes, then one `Span` field per span.
    buffer: Vec<u8>,
    spans: usize,
    /// The size of the last request, to size the next buffer.
    last_size: usize,
    /// Each call site's fields that are the same for all its spans, encoded
    /// once, found by the site's address (the last one first).
    sites: Vec<SiteFields>,
    site_index: HashMap<usize, usize, BuildHasherDefault<AddressHasher>>,
    last_site: Option<(usize, usize)>,
}

/// A call site's name, kind and `code.*` attributes as `Span` fields.
struct SiteFields {
    bytes: Box<[u8]>,
    /// Where the name field ends: a renamed span writes its own name, then
    /// the rest.
    name_end: usize,
}

impl SiteFields {
    fn new(site: &'static TraceSite) -> Self {
        let mut bytes = Vec::new();
        string(&mut bytes, 5, site.name);
        let name_end = bytes.len();
        let kind = match site.kind {
            Kind::Internal => 1,
            Kind::Server => 2,
            Kind::Client => 3,
            Kind::Producer => 4,
            Kind::Consumer => 5,
        };
        varint(&mut bytes, 6, kind);
        let info = site.info;
        // Spans of a function carry where it is; spans of a request made by
        // an integration (no source file) do not.
        if !info.file.is_empty() {
            let function = if info.module.is_empty() {
                info.function.to_owned()
            } else {
                format!("{}::{}", info.module, info.function)
            };
            key_value(&mut bytes, 9, "code.function.name", &Value::from(function));
            key_value(&mut bytes, 9, "code.file.path", &Value::from(info.file));
            key_value(
                &mut bytes,
                9,
                "code.line.number",
                &Value::I64(i64::from(info.line)),
            );
        }
        SiteFields {
            bytes: bytes.into_boxed_slice(),
            name_end,
        }
    }
}

/// Hashes a call site's address (a `static`'s: aligned, so its low bits
/// are mixed in from the high ones).
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = (self.0 ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn write_usize(&mut self, address: usize) {
        let mixed = (address as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        self.0 = mixed ^ (mixed >> 29);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl TraceRequestEncoder {
    pub(crate) fn new(resource: &Resource) -> Self {
        let mut resource_part = Vec::new();
        nested(&mut resource_part, 1, 1, |out| {
            for (key, value) in resource.iter() {
                key_value(out, 1, key.as_str(), value);
            }
        });
        if let Some(url) = resource.schema_url().filter(|url| !url.is_empty()) {
            string(&mut resource_part, 3, url);
        }
        let mut scope_part = Vec::new();
        nested(&mut scope_part, 1, 1, |out| {
            string(out, 1, "telemark");
            string(out, 2, env!("CARGO_PKG_VERSION"));
        });
        // Two tags and two lengths of at most 10 bytes each.
        let header_room = resource_part.len() + scope_part.len() + 2 * 11;
        let mut encoder = TraceRequestEncoder {
            resource_part,
            scope_part,
            header_room,
            buffer: Vec::new(),
            spans: 0,
            last_size: 0,
            sites: Vec::new(),
            site_index: HashMap::default(),
            last_site: None,
        };
        encoder.reset();
        encoder
    }

    fn reset(&mut self) {
        // Room for a quarter more than the last request (so that a batch
        // like it is not copied to grow), at most 1 MiB.
        let size = (self.last_size + self.last_size / 4)
            .min(1 << 20)
            .max(self.header_room + 4096);
        self.buffer = Vec::with_capacity(size);
        self.buffer.resize(self.header_room, 0);
        self.spans = 0;
    }

    /// Spans encoded since the last request was taken.
    pub(crate) fn len(&self) -> usize {
        self.spans
    }

    /// Encodes one ended span into the batch.
    pub(crate) fn add(&mut self, record: SpanRecord, clock: &WallClock) {
        self.spans += 1;
        let address = record.site as *const TraceSite as usize;
        let index = match self.last_site {
            Some((last, index)) if last == address => index,
            _ => {
                let sites = &mut self.sites;
                let index = *self.site_index.entry(address).or_insert_with(|| {
                    sites.push(SiteFields::new(record.site));
                    sites.len() - 1
                });
                self.last_site = Some((address, index));
                index
            }
        };
        let site = &self.sites[index];
        let out = &mut self.buffer;
        if record.extra.is_none() {
            plain_span(out, &record, site, clock);
            return;
        }
        // The fixed fields' room at once (ids, parent, times, flags).
        out.reserve(site.bytes.len() + 80);
        // ScopeSpans.spans = 2; a span is usually 128 to 16,383 bytes long.
        nested(out, 2, 2, |out| span(out, record, site, clock));
    }

    /// The encoded request, leaving the encoder empty for the next batch.
    pub(crate) fn take(&mut self) -> Bytes {
        let spans_len = self.buffer.len() - self.header_room;
        let scope_spans_len = self.scope_part.len() + spans_len;
        let resource_spans_len = self.resource_part.len()
            + 1
            + encoded_len_varint(scope_spans_len as u64)
            + scope_spans_len;
        let mut header = Vec::with_capacity(self.header_room);
        // ExportTraceServiceRequest.resource_spans = 1
        key(&mut header, 1, LENGTH_DELIMITED);
        put_varint(&mut header, resource_spans_len as u64);
        header.extend_from_slice(&self.resource_part);
        // ResourceSpans.scope_spans = 2
        key(&mut header, 2, LENGTH_DELIMITED);
        put_varint(&mut header, scope_spans_len as u64);
        header.extend_from_slice(&self.scope_part);
        let start = self.header_room - header.len();
        self.buffer[start..self.header_room].copy_from_slice(&header);
        self.last_size = self.buffer.len();
        let request = Bytes::from(std::mem::take(&mut self.buffer)).slice(start..);
        self.reset();
        request
    }
}

/// A span with nothing but what every span has (no `extra`: the usual
/// span), as a `ScopeSpans.spans` field: its length is known before it is
/// written, so it is written in one go into room reserved for it, with the
/// same bytes `span` writes.
#[inline]
fn plain_span(out: &mut Vec<u8>, record: &SpanRecord, site: &SiteFields, clock: &WallClock) {
    let ids_len = if record.parent_span_id != 0 { 38 } else { 28 };
    let span_len = ids_len + site.bytes.len() + 18 + 6;
    let head_len = 1 + encoded_len_varint(span_len as u64);
    let total = head_len + span_len;
    // ScopeSpans.spans = 2, and the span's length.
    let mut head = [0u8; 11];
    head[0] = tag(2, LENGTH_DELIMITED);
    let mut length = span_len as u64;
    for byte in &mut head[1..head_len] {
        *byte = length as u8 | 0x80;
        length >>= 7;
    }
    head[head_len - 1] &= 0x7f;
    let ids = id_fields(record);
    let mut tail = [0u8; 24];
    tail[..18].copy_from_slice(&time_fields(record, clock));
    tail[18..].copy_from_slice(&flags_field(record));
    out.reserve(total);
    let at = out.len();
    // SAFETY: `total` bytes were reserved past `at`. The head and the ids
    // are copied whole, at fixed lengths (no call to `memcpy`), then the
    // cursor moves past their used part only, so the next part overwrites
    // the rest: every write stays within `at + total` (`total` is at least
    // `head_len` + 28 + 24, so the 38 bytes of ids and the 11 of the head
    // fit), and exactly `total` bytes are written before the length covers
    // them. The sources are locals and the site's own buffer, which do not
    // overlap the vector's.
    unsafe {
        let start = out.as_mut_ptr().add(at);
        let mut to = start;
        std::ptr::copy_nonoverlapping(head.as_ptr(), to, head.len());
        to = to.add(head_len);
        std::ptr::copy_nonoverlapping(ids.as_ptr(), to, ids.len());
        to = to.add(ids_len);
        std::ptr::copy_nonoverlapping(site.bytes.as_ptr(), to, site.bytes.len());
        to = to.add(site.bytes.len());
        std::ptr::copy_nonoverlapping(tail.as_ptr(), to, tail.len());
        debug_assert_eq!(to.add(tail.len()), start.add(total));
        out.set_len(at + total);
    }
}

/// A span's `trace_id` (1), `span_id` (2) and `parent_span_id` (4)
/// fields: 38 bytes, of which a root span (no parent) uses the first 28.
#[inline(always)]
fn id_fields(record: &SpanRecord) -> [u8; 38] {
    let mut ids = [0u8; 38];
    ids[0] = tag(1, LENGTH_DELIMITED);
    ids[1] = 16;
    ids[2..18].copy_from_slice(&record.ids.trace_id.to_be_bytes());
    ids[18] = tag(2, LENGTH_DELIMITED);
    ids[19] = 8;
    ids[20..28].copy_from_slice(&record.ids.span_id.to_be_bytes());
    ids[28] = tag(4, LENGTH_DELIMITED);
    ids[29] = 8;
    ids[30..38].copy_from_slice(&record.parent_span_id.to_be_bytes());
    ids
}

fn span(out: &mut Vec<u8>, record: SpanRecord, site: &SiteFields, clock: &WallClock) {
    // trace_id = 1, span_id = 2 and parent_span_id = 4, written at once.
    let ids = id_fields(&record);
    if record.parent_span_id != 0 {
        out.extend_from_slice(&ids);
    } else {
        out.extend_from_slice(&ids[..28]);
    }
    // The site's name (unless renamed), kind and `code.*` attributes.
    match record
        .extra
        .as_deref()
        .and_then(|extra| extra.name.as_deref())
    {
        Some(name) => {
            string(out, 5, name);
            out.extend_from_slice(&site.bytes[site.name_end..]);
        }
        None => out.extend_from_slice(&site.bytes),
    }
    out.extend_from_slice(&time_fields(&record, clock));
    if let Some(extra) = record.extra.as_deref() {
        extra_fields(out, extra, clock);
    }
    out.extend_from_slice(&flags_field(&record));
}

/// A span's `start_time_unix_nano` (7) and `end_time_unix_nano` (8).
#[inline(always)]
fn time_fields(record: &SpanRecord, clock: &WallClock) -> [u8; 18] {
    let (start, end) = clock.unix_nanos_pair(record.start_ticks, record.end_ticks);
    let mut times = [0u8; 18];
    times[0] = tag(7, FIXED64);
    times[1..9].copy_from_slice(&start.to_le_bytes());
    times[9] = tag(8, FIXED64);
    times[10..18].copy_from_slice(&end.to_le_bytes());
    times
}

/// A span's `flags` (16, a two-byte key): sampled, and whether its parent
/// is remote.
#[inline(always)]
fn flags_field(record: &SpanRecord) -> [u8; 6] {
    let mut flags = FLAG_SAMPLED | FLAG_HAS_IS_REMOTE;
    if record.parent_is_remote {
        flags |= FLAG_IS_REMOTE;
    }
    let mut field = [0x80 | tag(0, FIXED32), 0x01, 0, 0, 0, 0];
    field[2..].copy_from_slice(&flags.to_le_bytes());
    field
}

/// The one-byte key of a field numbered below 16.
const fn tag(field: u8, wire_type: u8) -> u8 {
    debug_assert!(field < 16, "a field of 16 or more has a two-byte key");
    field << 3 | wire_type
}

/// What only some spans have: trace state, attributes, events, links,
/// status, dropped counts.
fn extra_fields(out: &mut Vec<u8>, extra: &SpanExtra, clock: &WallClock) {
    trace_state(out, 3, &extra.trace_state);
    for attribute in &extra.attributes {
        attribute_field(out, 9, attribute);
    }
    if extra.dropped_attributes > 0 {
        varint(out, 10, u64::from(extra.dropped_attributes));
    }
    for event in &extra.events {
        nested(out, 11, 1, |out| {
            let time = match event.time {
                EventTime::Ticks(ticks) => clock.unix_nanos(ticks),
                EventTime::Wall(time) => unix_nanos(time),
            };
            fixed64(out, 1, time);
            string(out, 2, &event.name);
            for attribute in &event.attributes {
                attribute_field(out, 3, attribute);
            }
        });
    }
    if extra.dropped_events > 0 {
        varint(out, 12, u64::from(extra.dropped_events));
    }
    for link in &extra.links {
        nested(out, 13, 1, |out| self::link(out, link));
    }
    if extra.dropped_links > 0 {
        varint(out, 14, u64::from(extra.dropped_links));
    }
    let (code, message) = match extra.final_status() {
        FinalStatus::Unset => (0, ""),
        FinalStatus::Ok => (1, ""),
        FinalStatus::Error(description) => (2, description),
    };
    if code != 0 {
        nested(out, 15, 1, |out| {
            if !message.is_empty() {
                string(out, 2, message);
            }
            varint(out, 3, code);
        });
    }
}

fn link(out: &mut Vec<u8>, link: &Link) {
    let context = &link.span_context;
    bytes(out, 1, &context.trace_id().to_bytes());
    bytes(out, 2, &context.span_id().to_bytes());
    trace_state(out, 3, context.trace_state());
    for attribute in &link.attributes {
        attribute_field(out, 4, attribute);
    }
    if link.dropped_attributes_count > 0 {
        varint(out, 5, u64::from(link.dropped_attributes_count));
    }
    let mut flags = u32::from(context.trace_flags().to_u8()) | FLAG_HAS_IS_REMOTE;
    if context.is_remote() {
        flags |= FLAG_IS_REMOTE;
    }
    fixed32(out, 6, flags);
}

/// A `tracestate` header, unless empty.
fn trace_state(out: &mut Vec<u8>, field: u32, state: &TraceState) {
    let header = state.header();
    if !header.is_empty() {
        string(out, field, &header);
    }
}

fn attribute_field(out: &mut Vec<u8>, field: u32, attribute: &KeyValue) {
    key_value(out, field, attribute.key.as_str(), &attribute.value);
}

/// A `KeyValue` message as field `field`.
fn key_value(out: &mut Vec<u8>, field: u32, name: &str, value: &Value) {
    nested(out, field, 1, |out| {
        string(out, 1, name);
        nested(out, 2, 1, |out| any_value(out, value));
    });
}

/// The fields of an `AnyValue` (a oneof: written even when zero).
fn any_value(out: &mut Vec<u8>, value: &Value) {
    match value {
        Value::String(text) => string(out, 1, text.as_str()),
        Value::Bool(flag) => varint(out, 2, u64::from(*flag)),
        Value::I64(number) => varint(out, 3, *number as u64),
        Value::F64(number) => fixed64(out, 4, number.to_bits()),
        Value::Array(array) => nested(out, 5, 1, |out| {
            // ArrayValue.values = 1, each an AnyValue.
            let mut each = |write: &dyn Fn(&mut Vec<u8>)| nested(out, 1, 1, write);
            match array {
                Array::Bool(items) => items
                    .iter()
                    .for_each(|item| each(&|out| varint(out, 2, u64::from(*item)))),
                Array::I64(items) => items
                    .iter()
                    .for_each(|item| each(&|out| varint(out, 3, *item as u64))),
                Array::F64(items) => items
                    .iter()
                    .for_each(|item| each(&|out| fixed64(out, 4, item.to_bits()))),
                Array::String(items) => items
                    .iter()
                    .for_each(|item| each(&|out| string(out, 1, item.as_str()))),
                // Kinds of arrays added to the API later: as text.
                other => each(&|out| string(out, 1, &other.to_string())),
            }
        }),
        // Kinds of values added to the API later: as text.
        other => string(out, 1, &other.to_string()),
    }
}

#[inline]
fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push(value as u8 | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[inline]
fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    put_varint(out, u64::from(field << 3 | u32::from(wire_type)));
}

#[inline]
fn varint(out: &mut Vec<u8>, field: u32, value: u64) {
    key(out, field, VARINT);
    put_varint(out, value);
}

#[inline]
fn fixed64(out: &mut Vec<u8>, field: u32, value: u64) {
    key(out, field, FIXED64);
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
fn fixed32(out: &mut Vec<u8>, field: u32, value: u32) {
    key(out, field, FIXED32);
    out.extend_from_slice(&value.to_le_bytes());
}

#[inline]
fn bytes(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    key(out, field, LENGTH_DELIMITED);
    put_varint(out, value.len() as u64);
    out.extend_from_slice(value);
}

fn string(out: &mut Vec<u8>, field: u32, value: &str) {
    bytes(out, field, value.as_bytes());
}

/// An embedded message, whose length is known only once written: written
/// after `guess` bytes kept for its length, then moved if the length took
/// another number of bytes (rarely: `guess` fits the usual size).
#[inline]
fn nested(out: &mut Vec<u8>, field: u32, guess: usize, write: impl FnOnce(&mut Vec<u8>)) {
    key(out, field, LENGTH_DELIMITED);
    let at = out.len();
    debug_assert!(guess <= 10, "a varint takes at most 10 bytes");
    out.extend_from_slice(&[0; 10][..guess]);
    write(out);
    let length = out.len() - at - guess;
    let needed = encoded_len_varint(length as u64);
    if needed != guess {
        let body = at + guess..out.len();
        if needed > guess {
            out.resize(out.len() + needed - guess, 0);
        }
        out.copy_within(body, at + needed);
        out.truncate(at + needed + length);
    }
    let mut length = length as u64;
    for byte in &mut out[at..at + needed] {
        *byte = length as u8 | 0x80;
        length >>= 7;
    }
    out[at + needed - 1] &= 0x7f;
}

#[cfg(test)]
mod tests {
    use std::borrow::Cow;
    use std::time::{Duration, SystemTime};

    use opentelemetry::trace::{SpanContext, SpanId, Status, TraceFlags, TraceId, TraceState};
    use opentelemetry::{Array, KeyValue, StringValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use opentelemetry_proto::tonic::trace::v1::{Span, Status as ProtoStatus};
    use opentelemetry_proto::transform::common::tonic::ResourceAttributesWithSchema;
    use opentelemetry_sdk::Resource;
    use prost::Message;

    use super::*;
    use crate::active_span::SpanIds;
    use crate::site::SiteInfo;
    use crate::trace::pipeline::Converter;
    use crate::trace::span::{RecordedEvent, SpanExtra};

    static FUNCTION: SiteInfo = SiteInfo::new("load_item", "shop::store", "src/store.rs", 42);
    static BARE: SiteInfo = SiteInfo::new("handler", "", "src/main.rs", 7);
    static REQUEST: SiteInfo = SiteInfo::new("GET", "", "", 0);
    static SITES: [TraceSite; 3] = [
        TraceSite {
            name: "load_item",
            kind: Kind::Internal,
            info: &FUNCTION,
        },
        TraceSite {
            name: "handler",
            kind: Kind::Server,
            info: &BARE,
        },
        TraceSite {
            name: "GET",
            kind: Kind::Client,
            info: &REQUEST,
        },
    ];

    /// The `n`th of a set of spans covering every field telemark fills.
    fn record(n: usize, base: u64) -> SpanRecord {
        let start = base - 5_000 * n as u64;
        let mut record = SpanRecord {
            ids: SpanIds {
                trace_id: 0x0102_0304_0506_0708_090a_0b0c_0d0e_0f10 + n as u128,
                span_id: 0x1112_1314_1516_1718 + n as u64,
            },
            site: &SITES[n % SITES.len()],
            parent_span_id: if n % 2 == 0 { 0 } else { 0xabcd + n as u64 },
            start_ticks: start,
            end_ticks: start + 1_000 + n as u64,
            parent_is_remote: n % 4 == 1,
            extra: None,
        };
        if n % 5 == 0 {
            return record;
        }
        let attributes = vec![
            KeyValue::new("text", format!("value {n}")),
            KeyValue::new("static", "fixed"),
            KeyValue::new("flag", n % 2 == 0),
            KeyValue::new("false", false),
            KeyValue::new("count", -(n as i64) * 1_000_000),
            KeyValue::new("zero", 0i64),
            KeyValue::new("ratio", 0.25 * n as f64),
            KeyValue::new("bools", Value::Array(Array::Bool(vec![true, false]))),
            KeyValue::new("ints", Value::Array(Array::I64(vec![1, -2, 300]))),
            KeyValue::new("floats", Value::Array(Array::F64(vec![1.5]))),
            KeyValue::new(
                "texts",
                Value::Array(Array::String(vec![StringValue::from("a"), "".into()])),
            ),
            KeyValue::new("long", "x".repeat(300)),
        ];
        let events = vec![
            RecordedEvent {
                name: Cow::Borrowed("exception"),
                time: EventTime::Ticks(start + 500),
                attributes: vec![KeyValue::new("exception.message", "boom")],
            },
            RecordedEvent {
                name: Cow::Owned(format!("event {n}")),
                time: EventTime::Wall(SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
                attributes: Vec::new(),
            },
        ];
        let linked = SpanContext::new(
            TraceId::from(7u128),
            SpanId::from(9u64),
            TraceFlags::SAMPLED,
            n % 3 == 0,
            "vendor=value".parse::<TraceState>().unwrap(),
        );
        let mut extra = SpanExtra {
            attributes,
            events,
            links: vec![opentelemetry::trace::Link::new(
                linked,
                vec![KeyValue::new("link.kind", "follows")],
                3,
            )],
            ..SpanExtra::default()
        };
        if n % 3 == 0 {
            extra.trace_state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7"
                .parse::<TraceState>()
                .unwrap();
        }
        match n % 4 {
            0 => extra.outcome = Some(format!("failed {n}")),
            1 => extra.status = Some(Status::Ok),
            2 => {
                extra.status = Some(Status::error("user said so"));
            }
            _ => {
                extra.status = Some(Status::Ok);
                extra.outcome = Some("ignored: Ok is final".into());
            }
        }
        if n % 7 == 0 {
            extra.name = Some(Cow::Owned(format!("renamed {n}")));
        }
        extra.dropped_attributes = n as u32;
        extra.dropped_events = 2 * n as u32;
        extra.dropped_links = 1;
        record.extra = Some(Box::new(extra));
        record
    }

    fn resource() -> Resource {
        Resource::builder()
            .with_service_name("shop")
            .with_attribute(KeyValue::new("deployment.environment.name", "test"))
            .with_attribute(KeyValue::new("host.cores", 2i64))
            .build()
    }

    fn decode(request: Bytes) -> ExportTraceServiceRequest {
        ExportTraceServiceRequest::decode(request).expect("a valid OTLP request")
    }

    /// What the OpenTelemetry SDK's OTLP exporter sends for the same span
    /// (its status is always present; telemark leaves out an unset one).
    fn sdk_span(record: SpanRecord, clock: &WallClock) -> Span {
        let mut span = Span::from(Converter::new().convert(record, clock));
        if span.status == Some(ProtoStatus::default()) {
            span.status = None;
        }
        span
    }

    #[test]
    fn spans_encode_as_the_sdk_exporter_sends_them() {
        let clock = WallClock::now();
        let base = crate::clock::clock().raw();
        let resource = resource();
        let mut encoder = TraceRequestEncoder::new(&resource);
        let count = 40;
        for n in 0..count {
            encoder.add(record(n, base), &clock);
        }
        assert_eq!(encoder.len(), count);
        let request = decode(encoder.take());
        assert_eq!(encoder.len(), 0);

        assert_eq!(request.resource_spans.len(), 1);
        let resource_spans = &request.resource_spans[0];
        let expected_resource = ResourceAttributesWithSchema::from(&resource);
        assert_eq!(
            resource_spans.resource.as_ref().unwrap().attributes,
            expected_resource.attributes.0
        );
        assert_eq!(resource_spans.scope_spans.len(), 1);
        let scope_spans = &resource_spans.scope_spans[0];
        let scope = scope_spans.scope.as_ref().unwrap();
        assert_eq!(scope.name, "telemark");
        assert_eq!(scope.version, env!("CARGO_PKG_VERSION"));
        assert_eq!(scope_spans.spans.len(), count);
        for (n, span) in scope_spans.spans.iter().enumerate() {
            assert_eq!(*span, sdk_span(record(n, base), &clock), "span {n}");
        }
        // Spot checks of what the comparison relies on.
        let first = &scope_spans.spans[0];
        assert_eq!(first.attributes[0].key, "code.function.name");
        assert_eq!(
            format!("{:?}", first.attributes[0].value.as_ref().unwrap().value),
            "Some(StringValue(\"shop::store::load_item\"))"
        );
        assert_eq!(first.flags, 0x101, "sampled, parent known local");
        assert_eq!(scope_spans.spans[1].flags, 0x301, "parent remote");
        assert!(scope_spans.spans[2]
            .attributes
            .iter()
            .all(|a| a.key != "code.file.path"));
    }

    #[test]
    fn batches_start_afresh_and_sizes_cross_varint_boundaries() {
        let clock = WallClock::now();
        let mut encoder = TraceRequestEncoder::new(&Resource::builder_empty().build());
        // An empty batch is a valid request with no spans.
        let empty = decode(encoder.take());
        assert_eq!(empty.resource_spans[0].scope_spans[0].spans.len(), 0);
        // Spans whose lengths take 1, 2 and 3 bytes, and attributes whose
        // own lengths take 1 and 2.
        for length in [0, 50, 126, 127, 128, 300, 16_380, 16_383, 16_384, 20_000] {
            let mut record = record(5, crate::clock::clock().raw());
            record.extra = Some(Box::new(SpanExtra {
                attributes: vec![KeyValue::new("padding", "p".repeat(length))],
                ..SpanExtra::default()
            }));
            encoder.add(record, &clock);
            let spans = decode(encoder.take()).resource_spans[0].scope_spans[0]
                .spans
                .clone();
            assert_eq!(spans.len(), 1);
            let padding = spans[0]
                .attributes
                .iter()
                .find(|attribute| attribute.key == "padding")
                .unwrap();
            assert_eq!(
                format!("{:?}", padding.value.as_ref().unwrap().value),
                format!("Some(StringValue({:?}))", "p".repeat(length))
            );
        }
    }
}
