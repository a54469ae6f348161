//! The reason table: statuses, strings and descriptions for every refusal.

use crate::deny::*;

#[test]
fn statuses_follow_rfc6750() {
    assert_eq!(Reason::Missing.status(), 401);
    assert_eq!(Reason::Missing.error_code(), ErrorCode::MissingToken);
    assert_eq!(Reason::InvalidRequest("x").status(), 400);
    assert_eq!(Reason::Scope("a".into()).status(), 403);
    assert_eq!(Reason::KeysUnavailable.status(), 503);
    assert_eq!(Reason::NoRoute.status(), 403);
    for r in [
        Reason::Opaque,
        Reason::Jwe,
        Reason::Malformed("x"),
        Reason::Algorithm,
        Reason::UnknownKid,
        Reason::BadSignature,
        Reason::Issuer,
        Reason::Audience,
        Reason::Expired,
        Reason::NotYetValid,
        Reason::Lifetime("x"),
        Reason::Typ,
        Reason::Crit,
        Reason::Client,
        Reason::IdToken,
    ] {
        assert_eq!(r.status(), 401, "{r:?}");
        assert_eq!(r.error_code(), ErrorCode::InvalidToken);
    }
}

#[test]
fn all_holds_each_variant_once_in_order() {
    let all = Reason::all();
    for (i, r) in all.iter().enumerate() {
        assert_eq!(r.ordinal(), i, "{r:?}");
    }
    // `ordinal`'s largest value is the last variant: all() cannot have skipped one.
    assert_eq!(Reason::Internal.ordinal() + 1, all.len());
}

#[test]
fn every_reason_has_a_status_a_string_and_a_description() {
    for r in Reason::all() {
        assert!([400, 401, 403, 503].contains(&r.status()), "{r:?}");
        assert!(!r.as_str().is_empty() && r.as_str().chars().all(|c| c.is_ascii_lowercase() || c == '_'));
        assert!(r.description(&[]).ends_with('.'), "{r:?}");
    }
}

#[test]
fn the_decision_page_documents_every_reason() {
    let readme = include_str!("../../docs/decisions.md");
    for r in Reason::all() {
        assert!(readme.contains(&format!("`{}`", r.as_str())), "docs/decisions.md lacks `{}`", r.as_str());
    }
}

#[test]
fn descriptions_name_the_audience() {
    let aud = vec!["https://api.example.com".to_string()];
    assert!(Reason::Audience.description(&aud).contains("https://api.example.com"));
    assert!(Reason::Opaque.description(&aud).contains("audience"));
    let id = Reason::IdToken.description(&aud);
    assert!(id.contains("ID token") && id.contains("access tokens only"));
}
