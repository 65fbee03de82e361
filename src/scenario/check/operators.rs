//! The `operators` and `profileTypes` sections: identities, callbacks, ownership.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::Spanned;

use crate::scenario::file::{self, HumanDuration, SubscriptionSpec};
use crate::scenario::load::Loaded;
use crate::scenario::{Callback, Operator, ProfileType};
use smdpp_rsp::profile_package::{check_structure, ProfilePackage, SubscriptionRule};

use super::{list, Checker};

fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

impl Checker<'_> {
    pub(super) fn operators(&mut self, loaded: &Loaded) -> Vec<Operator> {
        let mut operators: Vec<Operator> = Vec::new();
        let mut defined: HashMap<String, String> = HashMap::new();
        let mut cert_names: HashMap<String, String> = HashMap::new();
        for (src, f, dir) in &loaded.files {
            for op in &f.operators {
                let id = &op.id;
                let place = self.place(*src, &id.referenced);
                if let Some(first) = defined.get(&id.value) {
                    self.at(
                        *src,
                        &id.referenced,
                        format!("operator {:?} is already defined at {first}", id.value),
                    );
                    continue;
                }
                defined.insert(id.value.clone(), place);
                if !is_file_name(&id.value) {
                    self.at(
                        *src,
                        &id.referenced,
                        format!(
                            "operator id {:?} must be letters, digits, '-', '_' or '.' (it names certs/<id>.pem)",
                            id.value
                        ),
                    );
                }
                let names: Vec<Spanned<String>> = op
                    .certificate_names
                    .clone()
                    .unwrap_or_else(|| vec![id.clone()]);
                for name in &names {
                    if let Some(other) = cert_names.insert(name.value.clone(), id.value.clone()) {
                        if other != id.value {
                            self.at(
                                *src,
                                &name.referenced,
                                format!(
                                    "certificate name {:?} already identifies operator {other:?}",
                                    name.value
                                ),
                            );
                        }
                    }
                }
                let allowed_sources = op.allowed_source_ips.as_ref().map(|nets| {
                    nets.iter()
                        .filter_map(|n| self.parse(*src, n))
                        .collect::<Vec<_>>()
                });
                let callback = op
                    .callback
                    .as_ref()
                    .and_then(|cb| self.callback(*src, dir, cb))
                    .map(Arc::new);
                operators.push(Operator {
                    id: id.value.as_str().into(),
                    requester_identifiers: op
                        .requester_identifiers
                        .clone()
                        .unwrap_or_else(|| vec![id.value.clone()]),
                    certificate_names: names.into_iter().map(|n| n.value).collect(),
                    allowed_sources,
                    callback,
                });
            }
        }
        operators
    }

    pub(super) fn callback(
        &mut self,
        src: usize,
        dir: &std::path::Path,
        cb: &file::CallbackSpec,
    ) -> Option<Callback> {
        let url = &cb.url;
        let mut callback = match Callback::with_defaults(&url.value) {
            Ok(c) => c,
            Err(e) => {
                self.at(src, &url.referenced, format!("callback.url: {e}"));
                return None;
            }
        };
        if let Some(f) = &cb.ca_file {
            let path = dir.join(f);
            if !path.is_file() {
                self.at(
                    src,
                    &url.referenced,
                    format!("callback.caFile: {} does not exist", path.display()),
                );
            }
            callback.ca_file = Some(path);
        }
        let set = |target: &mut Duration, d: Option<HumanDuration>| {
            if let Some(d) = d {
                *target = d.0;
            }
        };
        set(&mut callback.timeout, cb.timeout);
        set(&mut callback.initial_backoff, cb.initial_backoff);
        set(&mut callback.max_backoff, cb.max_backoff);
        match cb.max_attempts {
            Some(0) => self.at(
                src,
                &url.referenced,
                "callback.maxAttempts must be at least 1",
            ),
            Some(n) => callback.max_attempts = n,
            None => {}
        }
        if let Some(v) = cb.client_certificate {
            callback.client_certificate = v;
        }
        if let Some(v) = cb.require_no_content {
            callback.require_no_content = v;
        }
        let f = &cb.format;
        let format = &mut callback.format;
        if let Some(v) = f.timestamp_key {
            format.timestamp_key = v;
        }
        format.point_id_as_string = f.point_id_type == Some(file::PointIdType::String);
        if let Some(v) = f.pad_iccid {
            format.pad_iccid = v;
        }
        if let Some(v) = f.result_data {
            format.result_data = v;
        }
        if let Some(v) = f.bpp_download_success {
            format.bpp_download_success = v;
        }
        if let Some(v) = f.eligibility_success {
            format.eligibility_success = v;
        }
        if let Some(v) = f.confirmation_failure_each_attempt {
            format.confirmation_failure_each_attempt = v;
        }
        for (slot, value) in format.local_points.iter_mut().zip([
            f.local_points.enable,
            f.local_points.disable,
            f.local_points.delete,
        ]) {
            if let Some(v) = value {
                *slot = v;
            }
        }
        Some(callback)
    }

    pub(super) fn profile_types(
        &mut self,
        loaded: &Loaded,
        operators: &[Operator],
    ) -> Vec<ProfileType> {
        let mut types: Vec<ProfileType> = Vec::new();
        let mut defined: HashMap<String, String> = HashMap::new();
        for (src, f, dir) in &loaded.files {
            for pt in &f.profile_types {
                if let Some(first) = defined.get(&pt.id.value) {
                    self.at(
                        *src,
                        &pt.id.referenced,
                        format!(
                            "profile type {:?} is already defined at {first}",
                            pt.id.value
                        ),
                    );
                    continue;
                }
                let place = self.place(*src, &pt.id.referenced);
                defined.insert(pt.id.value.clone(), place);
                let owner = match operators.iter().find(|o| *o.id == *pt.owner.value) {
                    Some(owner) => owner.id.clone(),
                    None => {
                        self.at(
                            *src,
                            &pt.owner.referenced,
                            format!(
                                "owner {:?} is not an operator of this scenario (operators: {})",
                                pt.owner.value,
                                list(operators.iter().map(|o| &*o.id))
                            ),
                        );
                        // Still defined, so that references to the type are not reported
                        // again: the one root error is the owner.
                        pt.owner.value.as_str().into()
                    }
                };
                let package = pt.profile_package.as_ref().and_then(|file| {
                    let path = dir.join(&file.value);
                    match read_package(&path) {
                        Ok(bytes) => Some(Arc::from(bytes)),
                        Err(e) => {
                            self.at(
                                *src,
                                &file.referenced,
                                format!("profilePackage {}: {e}", path.display()),
                            );
                            None
                        }
                    }
                });
                let subscription = match &pt.subscription {
                    None => SubscriptionRule::default(),
                    Some(spec) => match subscription_rule(&spec.value) {
                        Ok(rule) => rule,
                        Err(e) => {
                            self.at(*src, &spec.referenced, format!("subscription: {e}"));
                            SubscriptionRule::default()
                        }
                    },
                };
                types.push(ProfileType {
                    id: pt.id.value.as_str().into(),
                    owner,
                    package,
                    protection: pt.package_protection,
                    subscription,
                });
            }
        }
        types
    }
}

/// The rule a `subscription:` block describes, its defaults filled in; why it is not one.
fn subscription_rule(spec: &SubscriptionSpec) -> Result<SubscriptionRule, String> {
    let mut rule = SubscriptionRule::default();
    if let Some(mcc) = &spec.mcc {
        rule.mcc = mcc.clone();
    }
    if let Some(mnc) = &spec.mnc {
        rule.mnc = mnc.clone();
    }
    if let Some(op) = &spec.op {
        rule.op = smdpp_rsp::crypto::hex_decode(op)
            .and_then(|b| <[u8; 16]>::try_from(b).ok())
            .ok_or_else(|| format!("op {op:?} is not 32 hex digits"))?;
    }
    if let Some(seed) = &spec.key_seed {
        rule.key_seed = seed.clone();
    }
    rule.check()?;
    Ok(rule)
}

/// The largest profile package a scenario may name (real profiles are tens of kilobytes).
const MAX_PACKAGE: u64 = 4 << 20;

/// A profile package file: DER profile elements, read whole, that can be personalised per
/// order ([`ProfilePackage::parse`]).
fn read_package(path: &std::path::Path) -> Result<ProfilePackage, String> {
    let size = std::fs::metadata(path).map_err(|e| e.to_string())?.len();
    if size > MAX_PACKAGE {
        return Err(format!("{size} bytes; at most {MAX_PACKAGE} are accepted"));
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if bytes.is_empty() {
        return Err("the file is empty".into());
    }
    let package = ProfilePackage::parse(bytes)
        .map_err(|e| format!("cannot be personalised per order: {e}"))?;
    // What a card refuses (installFailedDueToPEProcessingError) is refused here, at load, rather
    // than in every download.
    check_structure(package.bytes())
        .map_err(|e| format!("a card would not install it: {e} (the ProfileHeader first, End last, one MF element and a USIM)"))?;
    Ok(package)
}
