//! Token extraction from arbitrary paths, header values and cookies.
#![no_main]
use jwt_guard::decision::extractor::{find_checked_token, remove_cookie, remove_query_param};
use jwt_guard::policy::{Extraction, HeaderSource};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Split the input into a path and three header values at NUL bytes.
    let mut parts = data.split(|b| *b == 0);
    let path = String::from_utf8_lossy(parts.next().unwrap_or(b"/"));
    let auth = parts.next().unwrap_or(b"");
    let custom = parts.next().unwrap_or(b"");
    let cookie = parts.next().unwrap_or(b"");
    let ex = Extraction {
        headers: vec![
            HeaderSource { name: "authorization".into(), value_prefix: Some("Bearer ".into()) },
            HeaderSource { name: "x-token".into(), value_prefix: None },
        ],
        params: vec!["access_token".into()],
        cookies: vec!["session".into()],
        // `Authorization: DPoP <token>`, as a provider with DPoP allowed reads it.
        dpop: Some(HeaderSource::dpop_authorization()),
    };
    let headers: Vec<(&str, &[u8])> =
        vec![("authorization", auth), ("x-token", custom), ("cookie", cookie), ("authorization", custom)];
    let _ = find_checked_token(&ex, &path, &headers);
    let _ = find_checked_token(&ex, &path, &headers[..3]);
    let _ = remove_query_param(&path, "access_token");
    let _ = remove_cookie(&String::from_utf8_lossy(cookie), "session");
});
