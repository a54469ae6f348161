use crate::decision::extractor::*;
use crate::deny::Reason;
use crate::policy::{Extraction, HeaderSource};

fn default_ex() -> Extraction {
    Extraction {
        headers: vec![HeaderSource { name: "authorization".into(), value_prefix: Some("Bearer ".into()) }],
        params: vec!["access_token".into()],
        cookies: vec!["session".into()],
        dpop: Some(HeaderSource::dpop_authorization()),
    }
}

fn h<'a>(pairs: &[(&'a str, &'a [u8])]) -> Vec<(&'a str, &'a [u8])> {
    pairs.to_vec()
}

fn run(path: &str, headers: &[(&str, &[u8])]) -> Result<Option<Found>, Reason> {
    find_checked_token(&default_ex(), path, &h(headers))
}

fn token(path: &str, headers: &[(&str, &[u8])]) -> String {
    run(path, headers).unwrap().unwrap().token
}

#[test]
fn authorization_header() {
    assert_eq!(token("/", &[("authorization", b"Bearer abc.def.ghi")]), "abc.def.ghi");
    assert_eq!(token("/", &[("authorization", b"bearer abc")]), "abc", "scheme is case-insensitive");
    assert_eq!(token("/", &[("authorization", b"BEARER abc==")]), "abc==");
    let f = run("/", &[("authorization", b"Bearer abc")]).unwrap().unwrap();
    assert_eq!(f.location, Location::Header("authorization".into()));
}

#[test]
fn other_schemes_are_not_bearer_tokens() {
    assert_eq!(run("/", &[("authorization", b"Basic dXNlcjpwdw==")]), Ok(None));
    assert_eq!(run("/", &[("authorization", b"Bearerabc")]), Ok(None));
    assert_eq!(run("/", &[]), Ok(None));
}

#[test]
fn malformed_authorization_values_are_400() {
    for v in [&b"Bearer "[..], b"Bearer", b"Bearer   ", b"bearer\t"] {
        assert_eq!(
            run("/", &[("authorization", v)]),
            Err(Reason::InvalidRequest("the bearer token is empty")),
            "{v:?}"
        );
    }
    for v in [&b"Bearer  abc"[..], b"Bearer abc def", b"Bearer abc\n", b"Bearer a\tb", b"Bearer abc "] {
        assert!(matches!(run("/", &[("authorization", v)]), Err(Reason::InvalidRequest(_))), "{v:?}");
    }
    assert!(matches!(run("/", &[("authorization", b"Bearer \xff\xfe")]), Err(Reason::InvalidRequest(_))));
}

#[test]
fn repeated_authorization_headers_are_400() {
    let r = run("/", &[("authorization", b"Bearer a"), ("authorization", b"Bearer a")]);
    assert!(matches!(r, Err(Reason::InvalidRequest(m)) if m.contains("repeats")));
    // A Basic header next to a Bearer one is not a second token.
    assert_eq!(token("/", &[("authorization", b"Basic x"), ("authorization", b"Bearer a")]), "a");
}

#[test]
fn custom_header_without_prefix() {
    let ex = Extraction {
        headers: vec![HeaderSource { name: "x-token".into(), value_prefix: None }],
        ..Extraction::default()
    };
    assert_eq!(find_checked_token(&ex, "/", &h(&[("x-token", b"abc")])).unwrap().unwrap().token, "abc");
    assert!(find_checked_token(&ex, "/", &h(&[("x-token", b"")])).is_err());
}

#[test]
fn query_parameters_are_percent_decoded() {
    assert_eq!(token("/x?a=1&access_token=ab%2Ecd", &[]), "ab.cd");
    assert_eq!(token("/x?access_token=a+b", &[]), "a+b", "plus is not a space in RFC 3986");
    assert_eq!(token("/x?acc%65ss_token=abc", &[]), "abc", "names are decoded too");
    assert_eq!(run("/x?other=1", &[]), Ok(None));
    assert!(matches!(run("/x?access_token=a&access_token=b", &[]), Err(Reason::InvalidRequest(_))));
    assert!(matches!(run("/x?access_token=", &[]), Err(Reason::InvalidRequest(_))));
    assert!(matches!(run("/x?access_token=%zz", &[]), Err(Reason::InvalidRequest(_))));
    // A sign is not a hex digit, though `u8::from_str_radix("+1", 16)` would take it.
    for bad in ["abc%+1", "abc%-1", "abc% 1", "abc%1", "abc%"] {
        let path = format!("/x?access_token={bad}");
        assert!(matches!(run(&path, &[]), Err(Reason::InvalidRequest(_))), "{bad}");
    }
    assert!(matches!(run("/x?access_token=%ff", &[]), Err(Reason::InvalidRequest(_))), "not UTF-8");
}

#[test]
fn cookies_quoted_and_repeated() {
    assert_eq!(token("/", &[("cookie", b"a=1; session=tok; b=2")]), "tok");
    assert_eq!(token("/", &[("cookie", b"session=\"tok\"")]), "tok");
    assert_eq!(token("/", &[("cookie", b"a=1"), ("cookie", b"session=tok")]), "tok");
    assert_eq!(run("/", &[("cookie", b"sessionx=tok")]), Ok(None));
    assert!(matches!(run("/", &[("cookie", b"session=a; session=b")]), Err(Reason::InvalidRequest(_))));
    assert!(matches!(run("/", &[("cookie", b"session=a"), ("cookie", b"session=a")]), Err(Reason::InvalidRequest(_))));
    assert!(matches!(run("/", &[("cookie", b"session=")]), Err(Reason::InvalidRequest(_))));
}

#[test]
fn tokens_in_two_places_are_400() {
    let r = run("/?access_token=a", &[("authorization", b"Bearer a")]);
    assert!(matches!(r, Err(Reason::InvalidRequest(m)) if m.contains("more than one")));
    let r = run("/", &[("authorization", b"Bearer a"), ("cookie", b"session=a")]);
    assert!(matches!(r, Err(Reason::InvalidRequest(_))));
}

#[test]
fn removal_helpers() {
    assert_eq!(remove_query_param("/x?a=1&access_token=t&b=2", "access_token"), "/x?a=1&b=2");
    assert_eq!(remove_query_param("/x?access_token=t", "access_token"), "/x");
    assert_eq!(remove_query_param("/x", "access_token"), "/x");
    assert_eq!(remove_cookie("a=1; session=t; b=2", "session").as_deref(), Some("a=1; b=2"));
    assert_eq!(remove_cookie("session=t", "session"), None);
}

#[test]
fn oversized_fields_are_refused_unscanned() {
    // A token that large is over any max_token_size: 401 too_large, as the decision table says.
    let big = format!("Bearer {}", "a".repeat(MAX_CREDENTIAL_FIELD_BYTES));
    assert_eq!(run("/", &[("authorization", big.as_bytes())]), Err(Reason::TooLarge));
    assert_eq!(Reason::TooLarge.status(), 401);
    let cookie = format!("x={}; session=t", "a".repeat(MAX_CREDENTIAL_FIELD_BYTES));
    assert_eq!(run("/", &[("cookie", cookie.as_bytes())]), Err(Reason::TooLarge));
    let path = format!("/?q={}", "a".repeat(MAX_CREDENTIAL_FIELD_BYTES));
    assert_eq!(run(&path, &[]), Err(Reason::TooLarge));
    // Other large headers are none of our business.
    assert_eq!(run("/", &[("x-big", "a".repeat(100_000).as_bytes())]), Ok(None));
}

#[test]
fn the_dpop_scheme_is_a_token_that_needs_a_proof() {
    let f = run("/", &[("authorization", b"DPoP abc")]).unwrap().unwrap();
    assert_eq!((f.token.as_str(), f.dpop), ("abc", true));
    let f = run("/", &[("authorization", b"dpop abc")]).unwrap().unwrap();
    assert!(f.dpop, "schemes are case-insensitive");
    assert!(!run("/", &[("authorization", b"Bearer abc")]).unwrap().unwrap().dpop);
    assert!(run("/", &[("authorization", b"DPoP a"), ("authorization", b"Bearer b")]).is_err(), "two tokens");
    assert!(run("/", &[("authorization", b"DPoP ")]).is_err(), "empty");
    let off = Extraction { dpop: None, ..default_ex() };
    assert_eq!(
        find_checked_token(&off, "/", &h(&[("authorization", b"DPoP abc")])).unwrap(),
        None,
        "DPoP disabled: not a token"
    );
}
