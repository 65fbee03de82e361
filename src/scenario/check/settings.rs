//! The `smdp` section: settings, strictness switches, limits (the state machine's rules) and
//! the simulated SM-DS.

use crate::ids::check_fqdn;
use crate::profile::machine::Rules;
use crate::scenario::file::{self, HumanDuration};
use crate::scenario::load::Loaded;
use crate::scenario::{PresetEvent, Settings, SmdsBehaviour, SmdsScenario};

use super::Checker;

fn is_admin_protocol(v: &str) -> bool {
    v.strip_prefix("gsma/rsp/v").is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

impl Checker<'_> {
    pub(super) fn settings(&mut self, loaded: &Loaded) -> Settings {
        let mut s = Settings {
            address: "localhost".into(),
            admin_protocol: crate::sgp22::ADMIN_PROTOCOL.into(),
            requester_identifier: String::new(),
            matching_id_seed: None,
            order_expiry: None,
            require_admin_protocol_header: true,
            require_json_content_type: true,
            conformance_strict: false,
            crl_file: None,
            retired_event_ids: crate::store::RETIRED_EVENT_IDS,
        };
        for (src, f, dir) in &loaded.files {
            let smdp = &f.smdp;
            if let Some(crl) = &smdp.crl_file {
                let path = dir.join(&crl.value);
                match std::fs::read(&path)
                    .map_err(|e| e.to_string())
                    .and_then(|pem| {
                        use rustls::pki_types::pem::PemObject;
                        rustls::pki_types::CertificateRevocationListDer::pem_slice_iter(&pem)
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(|e| format!("not a PEM CRL: {e}"))
                            .and_then(|crls| {
                                if crls.is_empty() {
                                    Err("no CRL in the file".into())
                                } else {
                                    Ok(())
                                }
                            })
                    }) {
                    Ok(()) => s.crl_file = Some(path),
                    Err(e) => self.at(
                        *src,
                        &crl.referenced,
                        format!("smdp.crlFile: {}: {e}", path.display()),
                    ),
                }
            }
            if let Some(a) = &smdp.address {
                match check_fqdn(&a.value) {
                    Ok(()) => s.address = a.value.clone(),
                    Err(e) => self.at(*src, &a.referenced, format!("smdp.address: {e}")),
                }
            }
            if let Some(p) = &smdp.admin_protocol {
                if is_admin_protocol(&p.value) {
                    s.admin_protocol = p.value.as_str().into();
                } else {
                    self.at(
                        *src,
                        &p.referenced,
                        format!(
                            "smdp.adminProtocol: {:?} does not have the form gsma/rsp/vX.Y.Z",
                            p.value
                        ),
                    );
                }
            }
            s.matching_id_seed = smdp.matching_id_seed.or(s.matching_id_seed);
            if let Some(r) = &smdp.requester_identifier {
                if r.is_empty() {
                    self.errors.file(
                        &self.sources[*src],
                        "smdp.requesterIdentifier must not be empty",
                    );
                }
                s.requester_identifier = r.clone();
            }
            if let Some(HumanDuration(d)) = smdp.order_expiry {
                s.order_expiry = Some(d);
            }
            if let Some(n) = &smdp.limits.retired_event_ids {
                if n.value == 0 {
                    self.at(
                        *src,
                        &n.referenced,
                        "smdp.limits.retiredEventIds: must be at least 1".to_string(),
                    );
                } else {
                    s.retired_event_ids = n.value as usize;
                }
            }
            if let Some(mode) = smdp.conformance {
                s.conformance_strict = mode == file::ConformanceMode::Strict;
            }
            let strict = &smdp.strict;
            if let Some(v) = strict.require_admin_protocol_header {
                s.require_admin_protocol_header = v;
            }
            if let Some(v) = strict.require_json_content_type {
                s.require_json_content_type = v;
            }
        }
        if s.requester_identifier.is_empty() {
            s.requester_identifier = s.address.clone();
        }
        s
    }

    pub(super) fn rules(&mut self, loaded: &Loaded) -> Rules {
        let mut rules = Rules::default();
        for (src, f, _) in &loaded.files {
            if let Some(v) = f.smdp.strict.cancel_order_requires_associated_ids {
                rules.cancel_requires_associated_ids = v;
            }
            for (limit, target, name) in [
                (
                    &f.smdp.limits.download_attempts,
                    &mut rules.max_download_attempts,
                    "downloadAttempts",
                ),
                (
                    &f.smdp.limits.confirmation_code_attempts,
                    &mut rules.max_confirmation_code_attempts,
                    "confirmationCodeAttempts",
                ),
            ] {
                if let Some(v) = limit {
                    if v.value == 0 {
                        self.errors.at(
                            &self.sources[*src],
                            &v.referenced,
                            format!("smdp.limits.{name}: must be at least 1"),
                        );
                    } else {
                        *target = v.value;
                    }
                }
            }
        }
        rules.order_expiry = loaded
            .files
            .iter()
            .rev()
            .find_map(|(_, f, _)| f.smdp.order_expiry)
            .map(|d| d.0);
        rules
    }

    pub(super) fn smds(&mut self, loaded: &Loaded) -> SmdsScenario {
        let mut smds = SmdsScenario {
            default: SmdsBehaviour::Register,
            ..SmdsScenario::default()
        };
        for (src, f, _) in &loaded.files {
            if let Some(d) = f.smds.default {
                smds.default = d;
            }
            for (address, behaviour) in &f.smds.addresses {
                match crate::ids::check_server_address(&address.value) {
                    Ok(()) => {
                        smds.addresses
                            .insert(crate::sgp22::normal_address(&address.value), *behaviour);
                    }
                    Err(e) => self.at(*src, &address.referenced, format!("smds.addresses: {e}")),
                }
            }
            if let Some(address) = &f.smds.address {
                match crate::ids::check_server_address(&address.value) {
                    Ok(()) => smds.address = Some(address.value.clone()),
                    Err(e) => self.at(*src, &address.referenced, format!("smds.address: {e}")),
                }
            }
            if let Some(root) = &f.smds.root {
                match crate::ids::check_server_address(&root.value) {
                    Ok(()) => smds.root = Some(root.value.clone()),
                    Err(e) => self.at(*src, &root.referenced, format!("smds.root: {e}")),
                }
            }
            for event in &f.smds.events {
                if let Some(preset) = self.preset_event(*src, event) {
                    smds.events.push(preset);
                }
            }
        }
        smds
    }

    fn preset_event(&mut self, src: usize, event: &file::PresetEventSpec) -> Option<PresetEvent> {
        let eid: Option<crate::ids::Eid> = self.parse(src, &event.eid);
        let id = &event.event_id;
        if let Err(e) = crate::store::events::check_length(
            "eventId",
            &id.value,
            crate::store::events::MAX_EVENT_ID,
        ) {
            self.at(src, &id.referenced, format!("smds.events: {e}"));
            return None;
        }
        let address = match &event.rsp_server_address {
            Some(a) => match crate::ids::check_server_address(&a.value) {
                Ok(()) => Some(a.value.clone()),
                Err(e) => {
                    self.at(src, &a.referenced, format!("smds.events: {e}"));
                    return None;
                }
            },
            None => None,
        };
        Some(PresetEvent {
            eid: eid?,
            event_id: id.value.clone(),
            rsp_server_address: address,
        })
    }
}
