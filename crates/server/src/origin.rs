//! Which pages may open the signaling WebSocket: our own. A WebSocket is not bound by the
//! same-origin policy, so without this check any site a member visits could open a socket to
//! us from their browser.

/// Whether a WebSocket upgrade with this `Origin` may proceed.
///
/// * No `Origin`: not a browser (browsers always send it on a WebSocket), so nothing to
///   protect against; a non-browser client can claim any origin anyway.
/// * Our own origin: the `Host` the request was sent to, with `https` when we serve TLS; when
///   we do not, `http` or `https`, since a TLS-terminating proxy that keeps the `Host` header
///   may sit in front of us.
/// * Any origin the operator listed with `--allowed-origin` (a proxy that rewrites `Host`),
///   already normalised by [`parse`].
pub(crate) fn allowed(
    origin: Option<&str>,
    host: Option<&str>,
    tls: bool,
    listed: &[String],
) -> bool {
    let Some(origin) = origin else {
        return true;
    };
    let Some((scheme, authority)) = split(origin) else {
        return false;
    };
    if listed
        .iter()
        .any(|o| *o == format!("{scheme}://{authority}"))
    {
        return true;
    }
    let scheme_ok = match scheme.as_str() {
        "https" => true,
        "http" => !tls,
        _ => false,
    };
    let Some(host) = host else {
        return false;
    };
    scheme_ok && authority == without_default_port(host, &scheme)
}

/// Checks an `--allowed-origin` and brings it to the form [`allowed`] compares with:
/// `scheme://host[:port]`, lower case, without a default port or a trailing slash.
pub(crate) fn parse(s: &str) -> Result<String, String> {
    let (scheme, authority) = split(s.strip_suffix('/').unwrap_or(s)).ok_or_else(|| {
        format!(
            "{s:?} is not an origin; expected https://HOST or https://HOST:PORT, as the \
             browser's address bar shows it, without a path"
        )
    })?;
    Ok(format!("{scheme}://{authority}"))
}

/// `(scheme, authority)` of an origin such as `https://Call.example.org:443`, normalised:
/// lower case, default port dropped. `None` for anything but `http(s)://host[:port]`.
fn split(origin: &str) -> Option<(String, String)> {
    let (scheme, authority) = origin.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let plain = !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if !matches!(scheme.as_str(), "http" | "https") || !plain {
        return None;
    }
    let authority = without_default_port(authority, &scheme);
    Some((scheme, authority))
}

/// `host:443` is `host` for https, `host:80` for http; lower-cased.
fn without_default_port(authority: &str, scheme: &str) -> String {
    let default = if scheme == "https" { ":443" } else { ":80" };
    authority
        .strip_suffix(default)
        .unwrap_or(authority)
        .to_ascii_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_own_pages_may_connect() {
        let ok = |origin, host, tls| allowed(Some(origin), Some(host), tls, &[]);
        assert!(ok("https://call.example.org", "call.example.org", true));
        assert!(ok("https://call.example.org", "call.example.org:443", true));
        assert!(ok("https://call.example.org:443", "call.example.org", true));
        assert!(ok(
            "https://Call.Example.org:8443",
            "call.example.org:8443",
            true
        ));
        assert!(ok("http://127.0.0.1:8080", "127.0.0.1:8080", false));
        assert!(ok("http://[::1]:8080", "[::1]:8080", false));
        // Behind a TLS proxy we speak plain HTTP, but the page is https.
        assert!(ok("https://call.example.org", "call.example.org", false));
        assert!(allowed(None, Some("call.example.org"), true, &[]));
    }

    #[test]
    fn other_pages_may_not() {
        for origin in [
            "https://evil.example",
            "https://call.example.org.evil.example",
            "https://call.example.org:8443",
            "https://call.example.org/",
            "null",
            "file://",
            "chrome-extension://abc",
        ] {
            assert!(
                !allowed(Some(origin), Some("call.example.org"), true, &[]),
                "{origin}"
            );
        }
        // A page over plain http when we serve TLS is not ours.
        assert!(!allowed(
            Some("http://call.example.org"),
            Some("call.example.org"),
            true,
            &[]
        ));
        assert!(!allowed(Some("https://call.example.org"), None, true, &[]));
    }

    #[test]
    fn listed_origins_may() {
        let listed = vec![parse("https://Call.example.org:443/").unwrap()];
        assert_eq!(listed, ["https://call.example.org"]);
        let from = |origin| allowed(Some(origin), Some("10.0.0.5:8080"), false, &listed);
        assert!(from("https://call.example.org"));
        assert!(!from("http://call.example.org"));
        assert!(!from("https://other.example.org"));
    }

    #[test]
    fn listed_origins_must_be_origins() {
        for bad in [
            "call.example.org",
            "https://",
            "https://call.example.org/app",
            "wss://call.example.org",
            "https://user@call.example.org",
        ] {
            let err = parse(bad).unwrap_err();
            assert!(err.contains("not an origin"), "{bad}: {err}");
        }
    }
}
