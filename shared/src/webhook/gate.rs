//! Per-source rules on who may send, beside the signature: an IP allow-list and a required
//! domain (checked first, from settings alone, so a refusal costs no AWS call) and a request
//! ceiling shared by every intake instance (checked after the signature, so forged requests
//! cannot spend a real sender's share).
//!
//! Settings (each optional, `source=…` entries separated by commas):
//! - `SOURCE_ALLOWED_IPS`: `salesforce=13.108.0.0/14 96.43.144.0/20` — addresses or CIDR blocks,
//!   separated by spaces; the request's source address (the function URL's or API Gateway's
//!   `requestContext.http.sourceIp`) must be in one.
//! - `MTLS_DOMAIN` and `MTLS_SOURCE` (`hooks.example.com`, `salesforce`): that source is accepted
//!   only through that domain (`requestContext.domainName`) — the template's API Gateway custom
//!   domain that requires mutual TLS — so the function URL cannot be used to go around it.
//! - `SOURCE_CEILINGS`: `zendesk=600/minute,github=5000/hour` — verified requests per window,
//!   across all instances; past it the sender gets 429 with `Retry-After`.

use std::collections::HashMap;
use std::net::IpAddr;

use ipnet::IpNet;

use crate::event::Source;
use crate::pacing::Rate;
use crate::settings::{MissingSetting, SettingError, Settings};

/// Per-source rules on who may send to intake: IP allow-lists, required domains and ceilings.
#[derive(Clone, Debug, Default)]
pub struct Gates {
    allowed_ips: HashMap<Source, Vec<IpNet>>,
    domains: HashMap<Source, String>,
    ceilings: HashMap<Source, Rate>,
}

/// `source=value` entries, each source known and named once.
fn entries<'a>(
    setting: &'static str,
    spec: &'a str,
) -> Result<Vec<(Source, &'a str)>, SettingError> {
    let invalid = |reason: String| SettingError::Invalid {
        name: setting,
        reason,
    };
    let mut seen = Vec::new();
    for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, value) = part
            .split_once('=')
            .ok_or_else(|| invalid(format!("{part:?} is not source=value")))?;
        let source = Source::parse(name.trim()).ok_or_else(|| {
            let names: Vec<&str> = Source::ALL.iter().map(|s| s.as_str()).collect();
            invalid(format!(
                "{:?} is not a webhook source (one of {})",
                name.trim(),
                names.join(", ")
            ))
        })?;
        if seen.iter().any(|(s, _)| *s == source) {
            return Err(invalid(format!("{source} is named twice")));
        }
        seen.push((source, value.trim()));
    }
    Ok(seen)
}

impl Gates {
    /// The gates `SOURCE_ALLOWED_IPS`, `MTLS_DOMAIN` with `MTLS_SOURCE`, and `SOURCE_CEILINGS` set.
    pub fn from_settings(s: &Settings) -> Result<Self, SettingError> {
        let domains = match (s.optional("MTLS_DOMAIN"), s.optional("MTLS_SOURCE")) {
            (Some(domain), Some(source)) => format!("{source}={domain}"),
            (Some(_), None) => return Err(MissingSetting("MTLS_SOURCE").into()),
            _ => String::new(),
        };
        Self::parse(
            s.optional("SOURCE_ALLOWED_IPS").unwrap_or(""),
            &domains,
            s.optional("SOURCE_CEILINGS").unwrap_or(""),
        )
    }

    /// Reads the three `source=value` lists (addresses, one required domain, one ceiling per
    /// source); an error names the setting and the entry at fault.
    pub fn parse(allowed_ips: &str, domains: &str, ceilings: &str) -> Result<Self, SettingError> {
        let mut gates = Gates::default();
        for (source, list) in entries("SOURCE_ALLOWED_IPS", allowed_ips)? {
            let nets = list
                .split_whitespace()
                .map(|a| {
                    a.parse::<IpNet>()
                        .or_else(|_| a.parse::<IpAddr>().map(IpNet::from))
                        .map_err(|_| SettingError::Invalid {
                            name: "SOURCE_ALLOWED_IPS",
                            reason: format!("{source}: {a:?} is not an address or CIDR block"),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if nets.is_empty() {
                return Err(SettingError::Invalid {
                    name: "SOURCE_ALLOWED_IPS",
                    reason: format!("{source}: no address given"),
                });
            }
            gates.allowed_ips.insert(source, nets);
        }
        for (source, domain) in entries("MTLS_DOMAIN", domains)? {
            let plain = !domain.is_empty()
                && domain
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if !plain {
                return Err(SettingError::Invalid {
                    name: "MTLS_DOMAIN",
                    reason: format!(
                        "{source}: {domain:?} is not a domain name (no scheme or path)"
                    ),
                });
            }
            gates.domains.insert(source, domain.to_ascii_lowercase());
        }
        for (source, window) in entries("SOURCE_CEILINGS", ceilings)? {
            let (count, period) =
                crate::pacing::parse_window(window).map_err(|e| SettingError::Invalid {
                    name: "SOURCE_CEILINGS",
                    reason: format!("{source}: {e}"),
                })?;
            gates.ceilings.insert(source, Rate::ceiling(count, period));
        }
        Ok(gates)
    }

    /// Where the request came from, before anything else is read: `Err` is the rule it broke (a
    /// 403). It names the rule, not the caller's address.
    pub(crate) fn check_origin(
        &self,
        source: Source,
        ip: Option<&str>,
        domain: Option<&str>,
    ) -> Result<(), OriginRefused> {
        if let Some(nets) = self.allowed_ips.get(&source) {
            let ip = ip.and_then(|ip| ip.parse::<IpAddr>().ok());
            if !ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))) {
                return Err(OriginRefused::Address { sender: source });
            }
        }
        if let Some(required) = self.domains.get(&source) {
            let host = domain.map(|d| d.split(':').next().unwrap_or(d).to_ascii_lowercase());
            if host.as_deref() != Some(required.as_str()) {
                return Err(OriginRefused::Domain {
                    sender: source,
                    required: required.clone(),
                });
            }
        }
        Ok(())
    }

    /// The source's request ceiling, if one is configured.
    pub fn ceiling(&self, source: Source) -> Option<Rate> {
        self.ceilings.get(&source).copied()
    }

    pub(crate) fn has_ceilings(&self) -> bool {
        !self.ceilings.is_empty()
    }
}

/// Which origin rule a request broke (`SOURCE_ALLOWED_IPS`, `SOURCE_REQUIRED_DOMAIN`).
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub(crate) enum OriginRefused {
    #[error("{sender} webhooks are accepted only from the addresses configured for {sender}; this request came from another")]
    Address { sender: Source },
    #[error("{sender} webhooks are accepted only through https://{required}/webhooks/{sender}")]
    Domain { sender: Source, required: String },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_allow_list_admits_its_blocks_and_refuses_the_rest_and_other_sources_are_untouched() {
        let g = Gates::parse(
            "salesforce=13.108.0.0/14 2001:db8::/32 198.51.100.7",
            "",
            "",
        )
        .unwrap();
        for ip in [
            "13.108.0.1",
            "13.111.255.254",
            "2001:db8::1",
            "198.51.100.7",
        ] {
            assert!(
                g.check_origin(Source::Salesforce, Some(ip), None).is_ok(),
                "{ip}"
            );
        }
        for ip in [
            Some("13.112.0.1"),
            Some("198.51.100.8"),
            Some("not an ip"),
            None,
        ] {
            let err = g.check_origin(Source::Salesforce, ip, None).unwrap_err();
            assert_eq!(
                err,
                OriginRefused::Address {
                    sender: Source::Salesforce
                }
            );
            assert!(
                err.to_string()
                    .contains("only from the addresses configured"),
                "{err}"
            );
        }
        assert!(g
            .check_origin(Source::Zendesk, Some("203.0.113.9"), None)
            .is_ok());
    }

    #[test]
    fn a_required_domain_refuses_the_function_url_and_accepts_the_domain_in_any_case() {
        let g = Gates::parse("", "salesforce=Hooks.Example.com", "").unwrap();
        assert!(g
            .check_origin(Source::Salesforce, None, Some("hooks.example.COM"))
            .is_ok());
        let err = g
            .check_origin(
                Source::Salesforce,
                None,
                Some("abc123.lambda-url.us-east-1.on.aws"),
            )
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "salesforce webhooks are accepted only through https://hooks.example.com/webhooks/salesforce"
        );
        assert!(g.check_origin(Source::Salesforce, None, None).is_err());
    }

    #[test]
    fn ceilings_parse_as_bursty_caps_and_bad_settings_name_the_setting_and_the_part() {
        let g = Gates::parse("", "", "zendesk=600/minute, github=5000/hour").unwrap();
        let z = g.ceiling(Source::Zendesk).unwrap();
        assert_eq!(z, Rate::ceiling(600, std::time::Duration::from_secs(60)));
        assert!(z.burst > 1, "a ceiling lets a vendor's burst through");
        assert!(g.ceiling(Source::Slack).is_none());
        for (ips, domains, ceilings, says) in [
            (
                "myspace=1.2.3.4",
                "",
                "",
                "SOURCE_ALLOWED_IPS: \"myspace\" is not a webhook source",
            ),
            (
                "salesforce=1.2.3.400",
                "",
                "",
                "salesforce: \"1.2.3.400\" is not an address",
            ),
            ("salesforce=", "", "", "salesforce: no address given"),
            (
                "",
                "salesforce=https://x.com/a",
                "",
                "MTLS_DOMAIN: salesforce",
            ),
            (
                "",
                "",
                "zendesk=many/minute",
                "SOURCE_CEILINGS: zendesk: \"many\" is not a positive count",
            ),
            ("", "", "zendesk=5/fortnight", "unknown period"),
            (
                "",
                "",
                "zendesk=5/minute,zendesk=6/minute",
                "zendesk is named twice",
            ),
        ] {
            let err = Gates::parse(ips, domains, ceilings)
                .unwrap_err()
                .to_string();
            assert!(err.contains(says), "{err} should say {says}");
        }
    }
}
