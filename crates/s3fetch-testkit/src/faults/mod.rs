//! Deterministic, seeded fault injection: a [`FaultPlan`] of [`FaultRule`]s applied to every
//! HTTP request in the server's `Gateway` (before `s3s`, so before the signature check).
//!
//! # Fault kinds
//!
//! | name                | applies to            | effect |
//! |---------------------|-----------------------|--------|
//! | `slow_down`         | GetObject, HeadObject | `503 SlowDown` |
//! | `internal_error`    | GetObject, HeadObject | `500 InternalError` |
//! | `forbidden`         | GetObject, HeadObject | `403 AccessDenied` |
//! | `not_found`         | GetObject, HeadObject | `404 NoSuchKey` (for a key that exists) |
//! | `reset_before_head` | GetObject, HeadObject | connection closed without any response |
//! | `cut_body_after`    | GetObject             | head + exactly N body bytes, then the connection is aborted |
//! | `stall_body`        | GetObject             | head + N body bytes, then nothing for T, then the rest (or an abort) |
//! | `corrupt`           | GetObject             | first byte of every body chunk flipped; length, ETag and checksum headers unchanged |
//! | `etag_change`       | ranged GetObject not starting at byte 0 | with `If-Match`: `412 PreconditionFailed`; without: the body with a different `ETag` header (as if the object had been replaced after the first part) |
//! | `list_slow_down`    | ListObjectsV2, ListObjects | `503 SlowDown` |
//!
//! `cut_body_after` and `stall_body` clamp N to the body length − 1, so the body is always
//! incomplete when the fault hits; they (and `corrupt`) only hit successful (200/206)
//! responses with a non-empty body. At most one fault hits a request: the first rule (in
//! plan order) whose decision says so.
//!
//! # Decisions
//!
//! Each request is identified by (operation, bucket, key, range start), the range start
//! being the `N` of `Range: bytes=N-…` (other Range forms: the whole header value; list
//! requests: bucket and the whole query string, so each page is its own request). The
//! server numbers attempts of the same identity from 1 (only for requests some rule's
//! filters match). A rule hits attempt `n` when `max_per_request == 0 || n <=
//! max_per_request` and `hash(seed, rule index, operation, bucket, key, range, n) <
//! probability`, so the same plan and seed make the same decisions on every run, and a
//! retry of the same request is decided afresh. With `sticky` the attempt number is left
//! out of the hash: a (key, range) is either hit on every attempt (up to
//! `max_per_request`) or never. Examples:
//!
//! * fail the first attempt of 1 % of GETs: `slow_down=0.01@max=1`;
//! * fail every attempt of one key: `forbidden=1@key=secret.bin`;
//! * 1 % of keys are "gone" for good: `not_found=0.01@sticky`;
//! * any attempt fails with 1 % (a retrying client eventually wins): `internal_error=0.01`.
//!
//! Requests answered by a fault without reaching `s3s` (errors, resets) still count in
//! [`RequestCounts`](crate::RequestCounts) under their operation. Injected faults are
//! counted by kind name: [`TestServer::fault_counts`](crate::TestServer::fault_counts).
//!
//! # Spec syntax (`s3fetch-testkit serve --faults SPEC`, [`FaultPlan::parse`])
//!
//! ```text
//! SPEC   := ITEM (',' ITEM)*
//! ITEM   := 'seed=' U64                                  (default 0)
//!         | KIND '=' PROBABILITY (':' PARAM)* ('@' OPTION)*
//! PARAM  := cut_body_after: BYTES (required)
//!           stall_body:     DURATION (required), then optionally BYTES sent before the
//!                           stall (default 1024) and `abort` or `continue` (default)
//! OPTION := 'max=' N       max_per_request (default 0 = every attempt)
//!         | 'sticky'        decide per (key, range), not per attempt
//!         | 'ranged'        only GET / HEAD requests with a Range header
//!         | 'bucket=' NAME  only this bucket
//!         | 'prefix=' P     only keys starting with P
//!         | 'key=' K        only this key (repeatable)
//! BYTES  := integer, optionally with k / m / g (KiB / MiB / GiB)
//! DURATION := number with s or ms (e.g. 5s, 1.5s, 250ms)
//! ```
//!
//! e.g. `slow_down=0.01,cut_body_after=0.01:65536,stall_body=0.01:5s,corrupt=0.01,not_found=0.005,seed=7`.
//! Key filters don't apply to `list_slow_down` (the bucket filter does); a `ranged` rule
//! never hits a list request. `internal_error=0.1@ranged` fails 10 % of the attempts of
//! ranged GETs (the parts of a multipart download) and no whole-object GET.
//!
//! Files: `plan.rs` (the plan and its spec parser), `decide.rs` (request classification and
//! the seeded decisions), `inject.rs` (applying a fault to the HTTP exchange).

pub(crate) mod decide;
pub(crate) mod inject;
mod plan;

pub use self::plan::{FaultKind, FaultPlan, FaultRule, FaultSpecError, DEFAULT_STALL_AFTER};
