//! SigV4 verification of requests signed for service `s3express` (header auth, GET and
//! HEAD), which `s3s` refuses outright. The same algorithm `s3s` runs for `s3`: the
//! canonical request (method, URI path as sent, sorted query, the signed headers, the
//! `x-amz-content-sha256` payload hash), the string to sign over the credential scope, and
//! the HMAC chain of the secret over date, region, service.
//!
//! Keys: the server's own pair (what the SDK signs CreateSession with, and every request
//! when session auth is disabled) or a session's (see `session.rs`), which also needs its
//! token in `x-amz-s3session-token` (else `403 AccessDenied`), is good for its own bucket
//! only (else `403 AccessDenied`), until it expires (`400 ExpiredToken`), and cannot create
//! sessions. Not checked: clock skew (the credential date must match `x-amz-date`).
//! Presigned `s3express` URLs are left to `s3s`, which refuses them.

use std::fmt::Write as _;
use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use hyper::http::{header, HeaderMap, Method, StatusCode};
use s3s::{s3_error, Body, HttpResponse, S3Error, S3Result};
use sha2::{Digest, Sha256};

use super::ExpressAuth;
use crate::state::Shared;

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(v: &str) -> Option<Authorization<'_>> {
    let rest = v.strip_prefix("AWS4-HMAC-SHA256")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let mut scope = credential?.split('/');
    let auth = Authorization {
        access_key: scope.next()?,
        date: scope.next()?,
        region: scope.next()?,
        service: scope.next()?,
        signed_headers: signed?.split(';').collect(),
        signature: signature?,
    };
    (scope.next() == Some("aws4_request") && scope.next().is_none()).then_some(auth)
}

/// Percent-encodes like SigV4's `UriEncode` (unreserved characters kept; `/` kept only in
/// paths).
fn uri_encode(out: &mut String, s: &[u8], keep_slash: bool) {
    for &b in s {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'_' | b'.' | b'~')
            || (keep_slash && b == b'/')
        {
            out.push(char::from(b));
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

/// Decodes `%XX` escapes (malformed ones stay literal) and, in a query component as `s3s`
/// reads one, `+` as a space.
fn percent_decode(s: &str, plus_is_space: bool) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let escaped = (b[i] == b'%')
            .then(|| b.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (escaped, b[i]) {
            (Some(v), _) => {
                out.push(v);
                i += 3;
                continue;
            }
            (None, b'+') if plus_is_space => out.push(b' '),
            (None, c) => out.push(c),
        }
        i += 1;
    }
    out
}

fn canonical_query(query: Option<&str>) -> String {
    let mut pairs: Vec<(String, String)> = query
        .unwrap_or("")
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            let (mut ek, mut ev) = (String::new(), String::new());
            uri_encode(&mut ek, &percent_decode(k, true), false);
            uri_encode(&mut ev, &percent_decode(v, true), false);
            (ek, ev)
        })
        .collect();
    pairs.sort();
    let parts: Vec<String> = pairs.into_iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join("&")
}

/// `name:value\n` for every signed header (values trimmed, inner runs of spaces collapsed,
/// repeated headers joined by `,`); `None` if a signed header is missing.
fn canonical_headers(headers: &HeaderMap, signed: &[&str]) -> Option<String> {
    let mut out = String::new();
    for name in signed {
        let values: Vec<&str> = headers
            .get_all(*name)
            .iter()
            .map(|v| v.to_str().ok())
            .collect::<Option<_>>()?;
        if values.is_empty() {
            return None;
        }
        out.push_str(name);
        out.push(':');
        for (i, v) in values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&v.split_whitespace().collect::<Vec<_>>().join(" "));
        }
        out.push('\n');
    }
    Some(out)
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key)
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

/// The signature of `canonical_request` under `secret` and the scope of `a`.
fn signature(
    secret: &str,
    amz_date: &str,
    a: &Authorization<'_>,
    canonical_request: &str,
) -> String {
    let scope = format!("{}/{}/{}/aws4_request", a.date, a.region, a.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    );
    let mut key = hmac(format!("AWS4{secret}").as_bytes(), a.date.as_bytes());
    for part in [a.region, a.service, "aws4_request"] {
        key = hmac(&key, part.as_bytes());
    }
    hex::encode(hmac(&key, string_to_sign.as_bytes()))
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Verifies an `s3express` request; its identity on success.
fn verify<B>(
    shared: &Shared,
    req: &hyper::Request<B>,
    a: &Authorization<'_>,
) -> S3Result<ExpressAuth> {
    // PUT too, so that a client can fill a directory bucket; its payload hash is taken as
    // signed (`x-amz-content-sha256`), not checked against the body.
    if !matches!(*req.method(), Method::GET | Method::HEAD | Method::PUT) {
        return Err(s3_error!(
            NotImplemented,
            "the test server takes s3express-signed GET, HEAD and PUT requests only"
        ));
    }
    let headers = req.headers();
    let amz_date = header(headers, "x-amz-date")
        .ok_or_else(|| s3_error!(InvalidRequest, "missing header: x-amz-date"))?;
    if amz_date.get(..8) != Some(a.date) {
        return Err(s3_error!(
            SignatureDoesNotMatch,
            "credential scope date does not match x-amz-date"
        ));
    }
    let payload = header(headers, "x-amz-content-sha256")
        .ok_or_else(|| s3_error!(InvalidRequest, "missing header: x-amz-content-sha256"))?;
    let session = if a.access_key == shared.options.access_key {
        None
    } else {
        Some(shared.sessions.get(a.access_key).ok_or_else(|| {
            s3_error!(
                InvalidAccessKeyId,
                "The AWS Access Key Id you provided does not exist in our records."
            )
        })?)
    };
    let secret = session
        .as_ref()
        .map_or(shared.options.secret_key.as_str(), |s| s.secret.as_str());
    let signed_headers = a.signed_headers.join(";");
    let canon_headers = canonical_headers(headers, &a.signed_headers)
        .ok_or_else(|| s3_error!(SignatureDoesNotMatch, "a signed header is missing"))?;
    let query = canonical_query(req.uri().query());
    let canonical = |path: &str| {
        format!(
            "{}\n{path}\n{query}\n{canon_headers}\n{signed_headers}\n{payload}",
            req.method()
        )
    };
    let raw_path = req.uri().path();
    let mut reencoded = String::new();
    uri_encode(&mut reencoded, &percent_decode(raw_path, false), true);
    let matches = [raw_path, reencoded.as_str()]
        .iter()
        .any(|p| signature(secret, amz_date, a, &canonical(p)) == a.signature);
    if !matches {
        return Err(s3_error!(
            SignatureDoesNotMatch,
            "The request signature we calculated does not match the signature you provided."
        ));
    }
    if let Some(s) = session {
        check_session(&s, headers, raw_path, req.uri().query())?;
    }
    Ok(ExpressAuth {
        region: a.region.to_owned(),
    })
}

/// What a session-signed request must also satisfy.
fn check_session(
    s: &super::session::Session,
    headers: &HeaderMap,
    path: &str,
    query: Option<&str>,
) -> S3Result<()> {
    if header(headers, "x-amz-s3session-token") != Some(s.token.as_str()) {
        return Err(s3_error!(
            AccessDenied,
            "The session token (x-amz-s3session-token) is missing or does not match the session key"
        ));
    }
    let bucket = path.trim_start_matches('/').split('/').next().unwrap_or("");
    if bucket != s.bucket {
        return Err(s3_error!(AccessDenied, "The session is for another bucket"));
    }
    if query.is_some_and(|q| {
        q.split('&')
            .any(|p| p == "session" || p.starts_with("session="))
    }) {
        return Err(s3_error!(
            AccessDenied,
            "CreateSession must be signed with the account's keys, not a session's"
        ));
    }
    if s.expires <= SystemTime::now() {
        return Err(s3_error!(ExpiredToken, "The provided token has expired."));
    }
    Ok(())
}

/// The gateway's `s3express` step: a request signed for `s3express` is verified and goes on
/// as described in [`crate::express`], or gets the returned answer. Others pass untouched.
pub(crate) fn authenticate<B>(
    shared: &Shared,
    req: &mut hyper::Request<B>,
) -> Option<HttpResponse> {
    let value = req.headers().get(header::AUTHORIZATION)?;
    let a = value.to_str().ok().and_then(parse_authorization)?;
    if a.service != "s3express" {
        return None;
    }
    match verify(shared, req, &a) {
        Ok(auth) => {
            req.headers_mut().remove(header::AUTHORIZATION);
            req.extensions_mut().insert(auth);
            None
        }
        Err(e) => Some(error_response(e, req.method() == Method::HEAD)),
    }
}

fn error_response(e: S3Error, head: bool) -> HttpResponse {
    let status = e.status_code().unwrap_or(StatusCode::FORBIDDEN);
    let mut res = e.to_http_response().unwrap_or_else(|_| {
        let mut r = hyper::Response::new(Body::empty());
        *r.status_mut() = status;
        r
    });
    if head {
        // Like S3: HEAD errors have no body.
        *res.body_mut() = Body::empty();
        res.headers_mut().remove(header::CONTENT_LENGTH);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_only_well_formed_authorization_headers() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AK/20240102/us-west-2/s3express/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=abc",
        )
        .unwrap();
        assert_eq!(
            a,
            Authorization {
                access_key: "AK",
                date: "20240102",
                region: "us-west-2",
                service: "s3express",
                signed_headers: vec!["host", "x-amz-date"],
                signature: "abc",
            }
        );
        assert_eq!(parse_authorization("AWS AK:sig"), None);
        assert_eq!(
            parse_authorization("AWS4-HMAC-SHA256 Credential=AK/d/r/s, Signature=x"),
            None
        );
    }

    #[test]
    fn canonical_query_is_sorted_and_uri_encoded() {
        assert_eq!(canonical_query(Some("session")), "session=");
        assert_eq!(
            canonical_query(Some("prefix=a%2Fb+c&list-type=2&delimiter=%2F")),
            "delimiter=%2F&list-type=2&prefix=a%2Fb%20c"
        );
        assert_eq!(canonical_query(None), "");
    }

    /// The example of the AWS SigV4 documentation ("GET Object" in "Examples of the
    /// complete Version 4 signing process", service `s3`): the same code signs `s3express`.
    #[test]
    fn signs_the_aws_documentation_example() {
        let a = Authorization {
            access_key: "AKIAIOSFODNN7EXAMPLE",
            date: "20130524",
            region: "us-east-1",
            service: "s3",
            signed_headers: vec!["host", "range", "x-amz-content-sha256", "x-amz-date"],
            signature: "",
        };
        let canonical = "GET\n/test.txt\n\nhost:examplebucket.s3.amazonaws.com\nrange:bytes=0-9\n\
             x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n\
             x-amz-date:20130524T000000Z\n\nhost;range;x-amz-content-sha256;x-amz-date\n\
             e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            signature(
                "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
                "20130524T000000Z",
                &a,
                canonical
            ),
            "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }
}
