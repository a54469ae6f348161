use crate::deny::Reason;
use crate::token::base64url::encode;
use crate::token::*;

fn tok(header: &str, payload: &str) -> String {
    format!("{}.{}.c2ln", encode(header.as_bytes()), encode(payload.as_bytes()))
}

#[test]
fn shapes() {
    assert_eq!(shape("abc"), Shape::Opaque);
    assert_eq!(shape("a.b.c"), Shape::Jws);
    assert_eq!(shape("a.b.c.d.e"), Shape::Jwe);
    assert_eq!(shape("a.b"), Shape::Malformed);
    assert_eq!(shape("a.b.c.d.e.f"), Shape::Malformed);
}

#[test]
fn parse_reads_header_and_claims() {
    let t = tok(
        r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#,
        r#"{"iss":"i","aud":["a","b"],"exp":10,"nbf":5,"iat":4,"sub":"s"}"#,
    );
    let jwt = parse(&t).unwrap();
    assert_eq!(
        jwt.header,
        Header {
            alg: "RS256".into(),
            kid: Some("k".into()),
            typ: Some("at+jwt".into()),
            crit: vec![],
            all: serde_json::from_str(r#"{"alg":"RS256","kid":"k","typ":"at+jwt"}"#).unwrap()
        }
    );
    assert_eq!(jwt.claims.aud, vec!["a", "b"]);
    assert_eq!((jwt.claims.exp, jwt.claims.nbf, jwt.claims.iat), (Some(10), Some(5), Some(4)));
    assert_eq!(jwt.signature, b"sig");
    assert_eq!(jwt.signing_input, t.rsplit_once('.').unwrap().0);
}

#[test]
fn header_errors() {
    let bad = |h: &str| parse(&tok(h, "{}")).unwrap_err();
    assert!(matches!(bad("[]"), Reason::Malformed(_)));
    assert!(matches!(bad(r#"{"kid":"k"}"#), Reason::Malformed(m) if m.contains("alg")));
    assert!(matches!(bad(r#"{"alg":5}"#), Reason::Malformed(m) if m.contains("alg")));
    assert!(matches!(bad(r#"{"alg":"RS256","kid":5}"#), Reason::Malformed(m) if m.contains("kid")));
    assert!(matches!(bad(r#"{"alg":"RS256","typ":5}"#), Reason::Malformed(m) if m.contains("typ")));
    assert!(matches!(bad(r#"{"alg":"RS256","crit":"x"}"#), Reason::Malformed(m) if m.contains("crit")));
    assert!(matches!(bad(r#"{"alg":"RS256","crit":[1]}"#), Reason::Malformed(m) if m.contains("crit")));
    assert!(matches!(bad(r#"{"alg":"RS256","alg":"RS256"}"#), Reason::Malformed(m) if m.contains("repeats")));
    assert!(matches!(parse("!!!.e30.c2ln").unwrap_err(), Reason::Malformed(_)));
}

#[test]
fn payload_errors() {
    let bad = |p: &str| parse(&tok(r#"{"alg":"RS256"}"#, p)).unwrap_err();
    assert!(matches!(bad("[1]"), Reason::Malformed(_)));
    assert!(matches!(bad("not json"), Reason::Malformed(_)));
    assert!(matches!(bad(r#"{"a":1,"a":2}"#), Reason::Malformed(m) if m.contains("repeats")));
    assert!(matches!(bad(r#"{"aud":null}"#), Reason::Malformed(m) if m.contains("aud")));
    assert!(matches!(bad(r#"{"exp":9223372036854775808}"#), Reason::Malformed(m) if m.contains("exp")));
    assert!(parse(&tok(r#"{"alg":"RS256"}"#, r#"{"exp":9223372036854775807}"#)).is_ok());
}

#[test]
fn empty_parts() {
    assert!(matches!(parse(".e30.c2ln").unwrap_err(), Reason::Malformed(_)));
    let no_sig = format!("{}.{}.", encode(br#"{"alg":"RS256"}"#), encode(b"{}"));
    assert!(matches!(parse(&no_sig).unwrap_err(), Reason::Malformed(_)));
    let none = format!("{}.{}.", encode(br#"{"alg":"none"}"#), encode(b"{}"));
    assert_eq!(parse(&none).unwrap_err(), Reason::Algorithm);
}

#[test]
fn garbage_never_panics() {
    let samples = ["", ".", "..", "...", "a..", ".b.", "..c", "\u{0}.\u{0}.\u{0}", "é.é.é", "eyJ.eyJ.eyJ"];
    for s in samples {
        let _ = parse(s);
        let _ = shape(s);
    }
    let mut seed = 42u64;
    for _ in 0..2000 {
        let len = (seed % 64) as usize;
        let s: String = (0..len)
            .map(|_| {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                let c = (seed >> 33) as u8 % 70;
                match c {
                    0..=2 => '.',
                    3..=64 => (b'0' + c % 75) as char,
                    _ => '-',
                }
            })
            .collect();
        let _ = parse(&s);
    }
}

#[test]
fn json_nesting_is_bounded_before_parsing() {
    assert_eq!(json_depth(br#"{"a":[1,{"b":2}],"c":"[[[{{{"}"#), 3, "brackets in strings do not count");
    assert_eq!(json_depth(br#"{"a":"\\\"[["}"#), 1, "escaped quotes stay inside the string");
    let deep = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_JSON_DEPTH), "]".repeat(MAX_JSON_DEPTH));
    let t = tok(r#"{"alg":"RS256"}"#, &deep);
    assert_eq!(parse(&t).unwrap_err(), Reason::Malformed("the JSON is nested too deeply"));
    let ok = format!("{{\"a\":{}1{}}}", "[".repeat(MAX_JSON_DEPTH - 1), "]".repeat(MAX_JSON_DEPTH - 1));
    assert!(parse(&tok(r#"{"alg":"RS256"}"#, &ok)).is_ok());
    // Far deeper than serde_json's own limit: refused cheaply, no stack trouble.
    let hostile = format!("{{\"a\":{}1{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(parse(&tok(r#"{"alg":"RS256"}"#, &hostile)).is_err());
}
