//! Why a JWKS or discovery fetch failed, as a typed cause. Logs print the cause with its
//! detail; metrics count failures by `cause()`, so an operator can tell a missing cluster from
//! a refused connection from an IdP that answered 503.

/// A JWKS fetch that did not yield keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    /// The proxy refused to start the call. For Envoy, BadArgument means the cluster does not
    /// exist (the request itself is always well formed).
    Dispatch { cluster: String, status: u32, status_name: &'static str },
    /// The proxy could not connect to the JWKS host (Envoy's own 503 before any byte came).
    Connect(String),
    /// The connection broke off: reset mid-answer, or a body shorter than its Content-Length.
    Reset(String),
    /// No complete answer within `timeout`: our deadline, in milliseconds, or Envoy's own
    /// (`None`: its 504 does not say how long it waited).
    Timeout(Option<u64>),
    /// The JWKS host answered with a status other than 2xx.
    Status { status: u32, body_bytes: usize },
    /// The answer's body is larger than `MAX_JWKS_BYTES`; it is not read.
    TooLarge(usize),
    /// A 2xx answer that is not a usable JWKS.
    Invalid(String),
    /// The OIDC discovery document was refused.
    Discovery(String),
    /// The proxy returned an error while the answer was read.
    Host(String),
}

impl FetchError {
    /// Every cause, in the order metrics define them.
    pub const CAUSES: [&'static str; 9] =
        ["dispatch", "connect", "reset", "timeout", "status", "too_large", "invalid", "discovery", "host"];

    /// The stable cause string of logs and metrics.
    pub fn cause(&self) -> &'static str {
        match self {
            FetchError::Dispatch { .. } => "dispatch",
            FetchError::Connect(_) => "connect",
            FetchError::Reset(_) => "reset",
            FetchError::Timeout(_) => "timeout",
            FetchError::Status { .. } => "status",
            FetchError::TooLarge(_) => "too_large",
            FetchError::Invalid(_) => "invalid",
            FetchError::Discovery(_) => "discovery",
            FetchError::Host(_) => "host",
        }
    }

    /// Envoy answers a call it could not complete itself, with a 503 or 504 of its own making
    /// and a fixed text. Those are told apart from an IdP's own 503 here. `body` is the start
    /// of the answer's body.
    pub fn from_status(status: u32, body_bytes: usize, body: &[u8]) -> FetchError {
        const CONNECT: &[u8] = b"upstream connect error or disconnect/reset before headers.";
        let text = || String::from_utf8_lossy(body).chars().filter(|c| !c.is_control()).take(200).collect::<String>();
        match status {
            503 if body.starts_with(CONNECT) => {
                let detail = text();
                let reason = detail.split("reset reason: ").nth(1).unwrap_or(&detail).to_string();
                if reason.contains("connection failure") || reason.contains("connection timeout") {
                    FetchError::Connect(reason)
                } else {
                    FetchError::Reset(reason)
                }
            }
            504 if body == b"upstream request timeout" => FetchError::Timeout(None),
            _ => FetchError::Status { status, body_bytes },
        }
    }
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FetchError::Dispatch { cluster, status: 2, .. } => write!(
                f,
                "Envoy has no cluster {cluster:?} (the call was refused with BadArgument); define it in \
                 Envoy's configuration (for Istio, a ServiceEntry)"
            ),
            FetchError::Dispatch { cluster, status, status_name } => {
                write!(f, "Envoy refused to start a call on cluster {cluster:?}: {status_name} ({status})")
            }
            FetchError::Connect(why) => write!(f, "could not connect to the JWKS host ({why})"),
            FetchError::Reset(why) => write!(f, "the connection broke off before the answer was complete ({why})"),
            FetchError::Timeout(None) => write!(f, "no complete answer before the timeout"),
            FetchError::Timeout(Some(ms)) => write!(f, "no complete answer within {ms} ms"),
            FetchError::Status { status, body_bytes } if (300..400).contains(status) => write!(
                f,
                "status {status} (a redirect, {body_bytes} body bytes): redirects are not followed; \
                 configure the final URL"
            ),
            FetchError::Status { status, body_bytes } => write!(f, "status {status}, body {body_bytes} bytes"),
            FetchError::TooLarge(size) => {
                write!(f, "body of {size} bytes exceeds {} bytes", crate::refresh::MAX_JWKS_BYTES)
            }
            FetchError::Invalid(why) => write!(f, "{why}"),
            FetchError::Discovery(why) => write!(f, "discovery document: {why}"),
            FetchError::Host(why) => write!(f, "the proxy failed while the answer was read: {why}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envoys_own_answers_are_told_from_the_idps() {
        let refused = b"upstream connect error or disconnect/reset before headers. reset reason: remote connection \
                        failure, transport failure reason: delayed connect error: Connection refused";
        let e = FetchError::from_status(503, refused.len(), refused);
        assert_eq!(e.cause(), "connect");
        assert!(e.to_string().contains("Connection refused"), "{e}");
        let reset = b"upstream connect error or disconnect/reset before headers. reset reason: connection termination";
        assert_eq!(FetchError::from_status(503, reset.len(), reset).cause(), "reset");
        assert_eq!(FetchError::from_status(504, 24, b"upstream request timeout").cause(), "timeout");
        // The IdP's own 503 and 504 are statuses.
        assert_eq!(FetchError::from_status(503, 4, b"down"), FetchError::Status { status: 503, body_bytes: 4 });
        assert_eq!(FetchError::from_status(504, 7, b"timeout").cause(), "status");
    }

    #[test]
    fn a_missing_cluster_is_named() {
        let e = FetchError::Dispatch { cluster: "jwks".into(), status: 2, status_name: "BadArgument" };
        assert!(e.to_string().contains("no cluster \"jwks\""), "{e}");
        let e = FetchError::Dispatch { cluster: "jwks".into(), status: 10, status_name: "InternalFailure" };
        assert!(e.to_string().contains("InternalFailure (10)"), "{e}");
    }

    #[test]
    fn redirects_say_they_are_not_followed() {
        let e = FetchError::Status { status: 302, body_bytes: 0 };
        assert!(e.to_string().contains("redirects are not followed"), "{e}");
    }

    #[test]
    fn every_cause_is_listed() {
        let all = [
            FetchError::Dispatch { cluster: String::new(), status: 2, status_name: "" },
            FetchError::Connect(String::new()),
            FetchError::Reset(String::new()),
            FetchError::Timeout(Some(1)),
            FetchError::Status { status: 500, body_bytes: 0 },
            FetchError::TooLarge(1),
            FetchError::Invalid(String::new()),
            FetchError::Discovery(String::new()),
            FetchError::Host(String::new()),
        ];
        let causes: Vec<&str> = all.iter().map(FetchError::cause).collect();
        assert_eq!(causes, FetchError::CAUSES);
    }
}
