//! Kubernetes naming rules and the names the platform derives from an instance name.
//!
//! Every object generated for an instance carries a name built here, so the limits are checked once, before any
//! manifest is written: an instance whose derived names would be rejected by the API server is an input error.

/// Prefix of the Service (and Deployment) that runs an instance: `foundry-<instance>`.
pub const SERVICE_PREFIX: &str = "foundry-";
/// Prefix of the identity route and DNS record of an instance: `foundry-id-<instance>`.
pub const ROUTE_PREFIX: &str = "foundry-id-";
/// Longest instance name: `foundry-<name>` must be a DNS-1035 label of at most 63 characters.
pub const MAX_INSTANCE_NAME: usize = 63 - SERVICE_PREFIX.len();
/// Longest DNS label (RFC 1035 / DNS-1123 label).
pub const MAX_LABEL: usize = 63;
/// Longest DNS name (and Kubernetes DNS subdomain).
pub const MAX_DNS_NAME: usize = 253;
/// Port of every instance Service (`foundry-<name>`, port 80 → Foundry's 30000).
pub const INSTANCE_SERVICE_PORT: u16 = 80;

/// The Service name of an instance.
pub fn service_name(instance: &str) -> String {
    format!("{SERVICE_PREFIX}{instance}")
}

/// The HTTPRoute and DNSEndpoint name of an instance.
pub fn route_name(instance: &str) -> String {
    format!("{ROUTE_PREFIX}{instance}")
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63 characters.
pub fn is_dns1123_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

/// A DNS-1123 label that starts with a letter (Service names).
pub fn is_dns1035_label(s: &str) -> bool {
    is_dns1123_label(s) && s.as_bytes().first().is_some_and(u8::is_ascii_lowercase)
}

/// Dot-separated DNS-1123 labels, at most 253 characters (most object names, hostnames).
pub fn is_dns1123_subdomain(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_DNS_NAME && s.split('.').all(is_dns1123_label)
}

/// Explains why `name` cannot name an instance, or `None` when it can.
pub fn instance_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("the name is empty".into());
    }
    if name.len() > MAX_INSTANCE_NAME {
        return Some(format!(
            "the name is {} characters long; `{SERVICE_PREFIX}<name>` must be a Service name of at most 63 \
             characters, so an instance name may have at most {MAX_INSTANCE_NAME}",
            name.chars().count()
        ));
    }
    if !is_dns1123_label(name) {
        return Some(
            "an instance name must be lowercase letters, digits and `-`, starting and ending with a letter or \
             digit, so that it is a valid Service name suffix and hostname label"
                .into(),
        );
    }
    None
}

/// Explains why `domain` cannot serve as a base domain, or `None` when it can.
pub fn base_domain_problem(domain: &str) -> Option<String> {
    if domain.starts_with("*.") {
        return Some("a base domain cannot be a wildcard; instances get `<instance>.<baseDomain>`".into());
    }
    if domain.ends_with('.') {
        return Some("write the base domain without the trailing dot".into());
    }
    if !is_dns1123_subdomain(domain) {
        return Some(
            "a base domain must be lowercase DNS labels (letters, digits, `-`) separated by dots, each at most 63 \
             characters"
                .into(),
        );
    }
    None
}

/// Whether `s` is a Kubernetes resource quantity in plain form: a decimal number with an optional SI or binary
/// suffix (`500m`, `1.5`, `2`, `512Mi`, `10Gi`). Exponent forms are not accepted.
pub fn is_quantity(s: &str) -> bool {
    const SUFFIXES: [&str; 15] = ["Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "n", "u", "m", "k", "M", "G", "T", "P", "E"];
    let number = SUFFIXES.iter().find_map(|suffix| s.strip_suffix(suffix)).unwrap_or(s);
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    !number.is_empty()
        && number.len() <= 20
        && !whole.is_empty()
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && (!number.contains('.') || !fraction.is_empty())
}

/// Whether `s` is an IPv4 address in dotted-quad form.
pub fn is_ipv4(s: &str) -> bool {
    let parts: Vec<&str> = s.split('.').collect();
    parts.len() == 4
        && parts.iter().all(|p| {
            !p.is_empty()
                && p.len() <= 3
                && p.bytes().all(|c| c.is_ascii_digit())
                && (p.len() == 1 || !p.starts_with('0'))
                && p.parse::<u16>().is_ok_and(|n| n <= 255)
        })
}

/// Whether `s` is an IPv6 address (the textual forms of RFC 4291, without zone).
pub fn is_ipv6(s: &str) -> bool {
    s.parse::<std::net::Ipv6Addr>().is_ok()
}

/// Why `target` cannot be a DNS target's hostname (a CNAME target) of a license publishing under `base_domain`,
/// if it cannot: it must be a hostname whose last label is not all digits (so a mistyped IP address such as
/// `203.0.113.300` or `1.2.3` is never read as a name), and it must not lie under the base domain (a CNAME into
/// the names the license itself publishes would point at itself).
pub fn hostname_target_problem(target: &str, base_domain: &str) -> Option<String> {
    let name = target.trim_end_matches('.');
    let shown = crate::text::shorten(target);
    let numeric_tld =
        name.rsplit('.').next().is_some_and(|last| !last.is_empty() && last.bytes().all(|b| b.is_ascii_digit()));
    if name.is_empty() || !is_dns1123_subdomain(name) {
        return Some(format!("`{shown}` is neither an IP address nor a hostname"));
    }
    if numeric_tld {
        return Some(format!(
            "`{shown}` is not a valid IP address, and a hostname cannot end in a number; check the address"
        ));
    }
    if !base_domain.is_empty() && (name == base_domain || name.ends_with(&format!(".{base_domain}"))) {
        return Some(format!(
            "`{shown}` lies under the license's own base domain `{base_domain}`; a CNAME there would point at the \
             names this license publishes"
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instance_names() {
        assert!(instance_name_problem("alpha").is_none());
        assert!(instance_name_problem("5e-campaign").is_none());
        assert!(instance_name_problem(&"a".repeat(55)).is_none());
        assert!(instance_name_problem(&"a".repeat(56)).is_some());
        for bad in ["", "Alpha", "-a", "a-", "a.b", "a_b", "ä"] {
            assert!(instance_name_problem(bad).is_some(), "{bad}");
        }
        assert!(is_dns1035_label(&service_name("5e-campaign")));
    }

    #[test]
    fn domains_and_addresses() {
        assert!(base_domain_problem("dungeons.example.com").is_none());
        assert!(base_domain_problem("*.example.com").is_some());
        assert!(base_domain_problem("example.com.").is_some());
        assert!(base_domain_problem("Example.com").is_some());
        assert!(base_domain_problem(&format!("{}.com", "a".repeat(64))).is_some());
        assert!(is_ipv4("192.168.1.10"));
        assert!(!is_ipv4("192.168.1.010"));
        assert!(!is_ipv4("256.1.1.1"));
        assert!(!is_ipv4("example.com"));
        assert!(is_ipv6("2001:db8::1"));
        assert!(!is_ipv6("2001:db8::g"));
        for ok in ["500m", "2", "1.5", "512Mi", "10Gi", "0"] {
            assert!(is_quantity(ok), "{ok}");
        }
        for bad in ["", "Gi", "10 Gi", "1.", ".5", "-1", "10gb", "1e3"] {
            assert!(!is_quantity(bad), "{bad}");
        }
    }
}
