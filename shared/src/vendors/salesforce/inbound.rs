//! Salesforce Outbound Messages: a SOAP `notifications` envelope with up to 100 `Notification`s,
//! each an sObject snapshot. Salesforce retries for 24 hours until it reads a SOAP
//! `notificationsResponse` with `Ack` true. Outbound messages carry no HMAC: the request is
//! accepted only from the configured `OrganizationId`s (the "secrets" of this source); pair it
//! with Salesforce's client certificate or an IP allow-list in front of the endpoint.

use std::collections::BTreeMap;

use quick_xml::events::Event as Xml;
use quick_xml::Reader;
use secrecy::{ExposeSecret, SecretString};

use crate::webhook::{Inbound, NormalizeError, Normalized, Reply, VerifyError};

/// What Salesforce must receive to stop retrying.
pub(crate) const ACK: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><notificationsResponse xmlns="http://soap.sforce.com/2005/09/outbound"><Ack>true</Ack></notificationsResponse></soapenv:Body></soapenv:Envelope>"#;

/// A Salesforce outbound message, read from the `notifications` element of its SOAP body.
#[derive(Debug, Default, PartialEq)]
pub struct Envelope {
    /// The sending org's `OrganizationId`, which [`verify`] checks against the allowed ones.
    pub organization_id: Option<String>,
    /// The `ActionId`: the outbound message action that sent it.
    pub action_id: Option<String>,
    /// The `Notification`s, in the order sent.
    pub notifications: Vec<Notification>,
}

/// One `Notification`: a snapshot of one record (an `sObject`).
#[derive(Debug, Default, PartialEq)]
pub struct Notification {
    /// The notification's `Id`, the same on Salesforce's retries; empty when absent.
    pub id: String,
    /// `Case`, `Account`, … from `xsi:type="sf:Case"`.
    pub object_type: Option<String>,
    /// The record's fields as sent, by name without namespace prefix, each as text.
    pub fields: BTreeMap<String, String>,
}

fn local(name: &[u8]) -> String {
    let name = String::from_utf8_lossy(name);
    name.rsplit(':').next().unwrap_or_default().to_owned()
}

/// Reads the SOAP body; an error when it is not UTF-8 XML or has no `notifications` element.
pub fn parse(body: &[u8]) -> Result<Envelope, NormalizeError> {
    let text = std::str::from_utf8(body)
        .map_err(|_| NormalizeError::NotXml("body is not UTF-8".into()))?;
    let mut reader = Reader::from_str(text.trim_start_matches('\u{feff}'));
    reader.config_mut().trim_text(true);
    let mut path: Vec<String> = Vec::new();
    let mut env = Envelope::default();
    let mut saw_notifications = false;
    loop {
        let event = reader.read_event().map_err(|e| {
            NormalizeError::NotXml(format!("at byte {}: {e}", reader.buffer_position()))
        })?;
        match event {
            Xml::Start(e) => {
                let name = local(e.name().as_ref());
                if name == "notifications" {
                    saw_notifications = true;
                }
                if name == "Notification" && path.last().is_some_and(|p| p == "notifications") {
                    env.notifications.push(Notification::default());
                }
                if name == "sObject" {
                    let kind = e
                        .attributes()
                        .flatten()
                        .find(|a| local(a.key.as_ref()) == "type")
                        .and_then(|a| {
                            a.unescape_value()
                                .ok()
                                .map(|v| v.rsplit(':').next().unwrap_or_default().to_owned())
                        });
                    if let Some(n) = env.notifications.last_mut() {
                        n.object_type = kind;
                    }
                }
                path.push(name);
            }
            Xml::End(_) => {
                path.pop();
            }
            Xml::Text(t) => {
                let value = t
                    .unescape()
                    .map_err(|e| NormalizeError::NotXml(e.to_string()))?
                    .into_owned();
                let n = path.len();
                let (parent, leaf) = match n {
                    0 | 1 => continue,
                    _ => (path[n - 2].as_str(), path[n - 1].as_str()),
                };
                match (parent, leaf) {
                    ("notifications", "OrganizationId") => env.organization_id = Some(value),
                    ("notifications", "ActionId") => env.action_id = Some(value),
                    ("Notification", "Id") => {
                        if let Some(last) = env.notifications.last_mut() {
                            last.id = value;
                        }
                    }
                    ("sObject", field) => {
                        if let Some(last) = env.notifications.last_mut() {
                            last.fields.insert(field.to_owned(), value);
                        }
                    }
                    _ => {}
                }
            }
            Xml::Eof => break,
            _ => {}
        }
    }
    if !saw_notifications {
        return Err(NormalizeError::MissingField("a SOAP notifications element"));
    }
    Ok(env)
}

/// Accept only the configured organizations (15- and 18-character ids compare on 15).
pub fn verify(body: &[u8], allowed_orgs: &[SecretString]) -> Result<(), VerifyError> {
    let env =
        parse(body).map_err(|_| VerifyError::MalformedHeader("SOAP body (OrganizationId)"))?;
    let org = env
        .organization_id
        .ok_or(VerifyError::MissingHeader("OrganizationId"))?;
    let short = |s: &str| s.chars().take(15).collect::<String>();
    if allowed_orgs
        .iter()
        .any(|a| short(a.expose_secret().trim()) == short(&org))
    {
        Ok(())
    } else {
        Err(VerifyError::Mismatch)
    }
}

/// Reads an outbound message as one event per notification (`salesforce:<type>.outbound`),
/// answered with the SOAP `Ack` that stops Salesforce's retries.
pub fn normalize(body: &[u8]) -> Result<Inbound, NormalizeError> {
    let env = parse(body)?;
    if env.notifications.is_empty() {
        return Err(NormalizeError::MissingField("Notification"));
    }
    let org = env.organization_id.clone().unwrap_or_default();
    let events = env
        .notifications
        .into_iter()
        .map(|n| {
            let kind = n.object_type.clone().unwrap_or_else(|| "sObject".into());
            let f = |k: &str| n.fields.get(k).cloned();
            Normalized {
                event_type: format!("salesforce:{kind}.outbound"),
                // Notification ids are unique per org; Salesforce resends the same id on retry.
                delivery_id: Some(format!("{org}:{}", n.id)),
                object_id: f("Id"),
                subject: f("Subject").or_else(|| f("Name")),
                text: f("Description"),
                requester: f("SuppliedEmail").or_else(|| f("ContactId")),
                occurred_at: f("LastModifiedDate").or_else(|| f("CreatedDate")).and_then(|d| crate::dates::parse(&d).ok()),
                links: Vec::new(),
                unknown_fields: Vec::new(),
                attachments: Vec::new(),
                raw: serde_json::json!({"organization_id": org, "notification_id": n.id, "type": kind, "fields": n.fields}).into(),
            }
        })
        .collect();
    Ok(Inbound::Events {
        events,
        ack: Some(Reply {
            content_type: "text/xml; charset=utf-8",
            body: ACK.to_owned(),
        }),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shape of Salesforce's documented outbound message (a Case).
    pub(crate) const SAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
 <soapenv:Body>
  <notifications xmlns="http://soap.sforce.com/2005/09/outbound">
   <OrganizationId>00D5g000004XXXXEAA</OrganizationId>
   <ActionId>04k5g000000XXXXAAA</ActionId>
   <SessionId xsi:nil="true"/>
   <EnterpriseUrl>https://example.my.salesforce.com/services/Soap/c/59.0/00D5g000004XXXX</EnterpriseUrl>
   <PartnerUrl>https://example.my.salesforce.com/services/Soap/u/59.0/00D5g000004XXXX</PartnerUrl>
   <Notification>
    <Id>04l5g00000XXXXXAAA</Id>
    <sObject xsi:type="sf:Case" xmlns:sf="urn:sobject.enterprise.soap.sforce.com">
     <sf:Id>5005g00000XXXXXAAA</sf:Id>
     <sf:CaseNumber>00001026</sf:CaseNumber>
     <sf:Subject>Billing &amp; refund question</sf:Subject>
     <sf:Description>Charged twice</sf:Description>
     <sf:CreatedDate>2024-01-15T10:31:00.000Z</sf:CreatedDate>
    </sObject>
   </Notification>
  </notifications>
 </soapenv:Body>
</soapenv:Envelope>"#;

    #[test]
    fn outbound_message_parses_and_acks() {
        let Inbound::Events { events, ack } = normalize(SAMPLE.as_bytes()).unwrap() else {
            panic!("expected events")
        };
        let n = &events[0];
        assert_eq!(n.event_type, "salesforce:Case.outbound");
        assert_eq!(n.object_id.as_deref(), Some("5005g00000XXXXXAAA"));
        assert_eq!(n.subject.as_deref(), Some("Billing & refund question"));
        assert_eq!(
            n.delivery_id.as_deref(),
            Some("00D5g000004XXXXEAA:04l5g00000XXXXXAAA")
        );
        assert!(ack.unwrap().body.contains("<Ack>true</Ack>"));
    }

    #[test]
    fn only_configured_orgs_are_accepted() {
        assert_eq!(
            verify(SAMPLE.as_bytes(), &[SecretString::from("00D5g000004XXXX")]),
            Ok(())
        );
        assert_eq!(
            verify(SAMPLE.as_bytes(), &[SecretString::from("00D000000000001")]),
            Err(VerifyError::Mismatch)
        );
    }

    #[test]
    fn broken_xml_is_named() {
        let err = normalize(b"<soapenv:Envelope><notifications>").unwrap_err();
        assert!(
            matches!(
                err,
                NormalizeError::NotXml(_) | NormalizeError::MissingField(_)
            ),
            "{err:?}"
        );
        assert!(matches!(
            normalize(b"<a></b>").unwrap_err(),
            NormalizeError::NotXml(_)
        ));
    }
}
