//! Merging loaded files into one [`Scenario`] and checking everything YAML types cannot:
//! formats, Luhn digits, uniqueness, references between sections, possible initial states and
//! timelines. Every problem is collected with its place; any problem means no scenario.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use serde_saphyr::{Location, Spanned};

use super::error::{Collector, ScenarioErrors, Source};
use super::file::{self, DeviceEventName, HumanDuration, ProfileEntry};
use super::load::Loaded;
use super::{
    Callback, DeviceRule, FaultSpec, FaultTarget, IccidSource, InventoryEntry, Operator,
    ProfileType, Scenario, Settings, SmdsBehaviour, TimelineStep, DEFAULT_DEVICE_EID,
};
use crate::ids::sha256;
use crate::ids::{check_fqdn, luhn_check_digit, Eid, Iccid, IccidKey, MatchingId};
use crate::profile::machine::{transition, Event, NotificationPoint, Rules};
use crate::profile::{Order, OrderField, OrderMatchingId, Profile, ProfileState};
use crate::sgp22::{status_code_by_name, Function};

/// Most repetitions of one timeline step.
const MAX_TIMES: u32 = 10_000;
/// Most profiles a scenario may hold: far beyond any test, well below exhausting memory.
const MAX_PROFILES: usize = 20_000_000;

pub(super) fn build(loaded: Loaded) -> Result<Scenario, ScenarioErrors> {
    let mut c = Checker {
        sources: &loaded.sources,
        errors: Collector::default(),
    };
    let settings = c.settings(&loaded);
    let (smds_default, smds) = c.smds(&loaded);
    let operators = c.operators(&loaded);
    let profile_types = c.profile_types(&loaded, &operators);
    let rules = c.rules(&loaded);
    let (inventory, profile_count, iccids) = c.inventory(&loaded, &profile_types);
    let devices = c.devices(&loaded, &operators, &profile_types, &rules);
    let faults = c.faults(&loaded, &operators, &profile_types, &iccids);
    drop(iccids);
    if operators.is_empty() && c.errors.is_empty() {
        if let Some(last) = loaded.sources.last() {
            c.errors.file(
                last,
                "no operators: a scenario needs at least one under `operators`",
            );
        }
    }
    c.errors.finish()?;
    Ok(Scenario {
        settings,
        smds_default,
        smds,
        operators,
        profile_types,
        inventory,
        devices,
        faults,
        rules,
        profile_count,
        sources: loaded.sources.iter().map(|s| s.name.clone()).collect(),
    })
}

struct Checker<'a> {
    sources: &'a [Source],
    errors: Collector,
}

impl Checker<'_> {
    fn at(&mut self, src: usize, location: &Location, message: impl Into<String>) {
        self.errors.at(&self.sources[src], location, message);
    }

    /// Parses a spanned value, reporting a failure at its place.
    fn parse<T: std::str::FromStr>(&mut self, src: usize, value: &Spanned<String>) -> Option<T>
    where
        T::Err: std::fmt::Display,
    {
        match value.value.parse() {
            Ok(v) => Some(v),
            Err(e) => {
                self.at(src, &value.referenced, e.to_string());
                None
            }
        }
    }

    fn settings(&mut self, loaded: &Loaded) -> Settings {
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

    fn rules(&mut self, loaded: &Loaded) -> Rules {
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

    fn smds(&mut self, loaded: &Loaded) -> (SmdsBehaviour, HashMap<String, SmdsBehaviour>) {
        let mut default = SmdsBehaviour::Register;
        let mut map = HashMap::new();
        for (src, f, _) in &loaded.files {
            if let Some(d) = f.smds.default {
                default = d;
            }
            for (address, behaviour) in &f.smds.addresses {
                match check_fqdn(&address.value) {
                    Ok(()) => {
                        map.insert(address.value.to_ascii_lowercase(), *behaviour);
                    }
                    Err(e) => self.at(*src, &address.referenced, format!("smds.addresses: {e}")),
                }
            }
        }
        (default, map)
    }

    fn operators(&mut self, loaded: &Loaded) -> Vec<Operator> {
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

    fn callback(
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

    fn profile_types(&mut self, loaded: &Loaded, operators: &[Operator]) -> Vec<ProfileType> {
        let mut types: Vec<ProfileType> = Vec::new();
        let mut defined: HashMap<String, String> = HashMap::new();
        for (src, f, _) in &loaded.files {
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
                let Some(owner) = operators.iter().find(|o| *o.id == *pt.owner.value) else {
                    self.at(
                        *src,
                        &pt.owner.referenced,
                        format!(
                            "owner {:?} is not an operator of this scenario (operators: {})",
                            pt.owner.value,
                            list(operators.iter().map(|o| &*o.id))
                        ),
                    );
                    continue;
                };
                types.push(ProfileType {
                    id: pt.id.value.as_str().into(),
                    owner: owner.id.clone(),
                });
            }
        }
        types
    }

    fn inventory(
        &mut self,
        loaded: &Loaded,
        types: &[ProfileType],
    ) -> (Vec<InventoryEntry>, usize, HashMap<IccidKey, u32>) {
        let mut entries = Vec::new();
        let mut seen: HashMap<IccidKey, u32> = HashMap::new();
        let mut places: Vec<String> = Vec::new();
        let mut matching_ids: HashMap<String, String> = HashMap::new();
        let mut count = 0;
        for (src, f, _) in &loaded.files {
            for pt in &f.profile_types {
                let Some(ty) = types.iter().find(|t| *t.id == *pt.id.value) else {
                    continue; // already reported
                };
                for entry in &pt.profiles {
                    let Some(iccids) = self.iccids(*src, entry) else {
                        continue;
                    };
                    let Some(initial) = self.initial(*src, entry, &iccids, &mut matching_ids)
                    else {
                        continue;
                    };
                    if count + iccids.len() > MAX_PROFILES {
                        self.at(
                            *src,
                            &entry.referenced,
                            format!("the inventory would exceed {MAX_PROFILES} profiles"),
                        );
                        return (entries, count, seen);
                    }
                    let place_index = places.len() as u32;
                    places.push(self.place(*src, &entry.referenced));
                    for iccid in iccids.iter() {
                        if let Some(first) = seen.insert(iccid.key(), place_index) {
                            let location = self.iccid_location(entry);
                            self.at(
                                *src,
                                &location,
                                format!(
                                    "ICCID {iccid} is already in the inventory (entry at {})",
                                    places[first as usize]
                                ),
                            );
                            break;
                        }
                    }
                    count += iccids.len();
                    entries.push(InventoryEntry {
                        profile_type: ty.id.clone(),
                        owner: ty.owner.clone(),
                        iccids,
                        initial,
                    });
                }
            }
        }
        (entries, count, seen)
    }

    fn iccid_location(&self, entry: &Spanned<ProfileEntry>) -> Location {
        let e = &entry.value;
        e.iccid
            .as_ref()
            .map(|i| i.referenced)
            .or_else(|| e.range.as_ref().map(|r| r.referenced))
            .unwrap_or(entry.referenced)
    }

    fn iccids(&mut self, src: usize, entry: &Spanned<ProfileEntry>) -> Option<IccidSource> {
        let e = &entry.value;
        match (&e.iccid, &e.iccids, &e.range) {
            (Some(one), None, None) => self.iccid(src, one).map(|i| IccidSource::List(vec![i])),
            (None, Some(many), None) => {
                let parsed: Vec<Option<Iccid>> = many.iter().map(|i| self.iccid(src, i)).collect();
                parsed
                    .into_iter()
                    .collect::<Option<Vec<_>>>()
                    .map(IccidSource::List)
            }
            (None, None, Some(range)) => self.range(src, range),
            _ => {
                self.at(
                    src,
                    &entry.referenced,
                    "a profile entry needs exactly one of `iccid`, `iccids` and `range`",
                );
                None
            }
        }
    }

    fn iccid(&mut self, src: usize, text: &Spanned<String>) -> Option<Iccid> {
        let iccid: Iccid = self.parse(src, text)?;
        if !iccid.luhn_valid() {
            let digits = iccid.digits();
            let expected = luhn_check_digit(&digits[..digits.len() - 1]).unwrap_or(0);
            self.at(
                src,
                &text.referenced,
                format!("ICCID {iccid} has a wrong Luhn check digit: the last digit should be {expected}"),
            );
            return None;
        }
        Some(iccid)
    }

    fn range(&mut self, src: usize, range: &Spanned<file::IccidRange>) -> Option<IccidSource> {
        let r = &range.value;
        let start = &r.start;
        let width = start.len();
        if !(width == 18 || width == 19) || !start.bytes().all(|b| b.is_ascii_digit()) {
            self.at(
                src,
                &range.referenced,
                format!(
                    "range.start {start:?} must be the first ICCID without its check digit: 18 or 19 digits"
                ),
            );
            return None;
        }
        if r.pad && width == 19 {
            self.at(
                src,
                &range.referenced,
                "range.pad: only 19-digit ICCIDs (an 18-digit start) take the F pad",
            );
            return None;
        }
        let first: u128 = start.parse().ok()?;
        let fits = first
            .checked_add(u128::from(r.count))
            .is_some_and(|end| end.saturating_sub(1).to_string().len() <= width);
        if !fits {
            self.at(
                src,
                &range.referenced,
                format!(
                    "range: {start} + {} does not fit in {width} digits",
                    r.count
                ),
            );
            return None;
        }
        Some(IccidSource::Range {
            first,
            width,
            count: r.count,
            pad: r.pad,
        })
    }

    fn initial(
        &mut self,
        src: usize,
        entry: &Spanned<ProfileEntry>,
        iccids: &IccidSource,
        matching_ids: &mut HashMap<String, String>,
    ) -> Option<Order> {
        let e = &entry.value;
        let state = e
            .state
            .as_ref()
            .map_or(ProfileState::Available, |s| s.value);
        let state_place = e.state.as_ref().map_or(entry.referenced, |s| s.referenced);
        let eid: Option<Eid> = match &e.eid {
            Some(text) => Some(self.parse(src, text)?),
            None => None,
        };
        let mut ok = true;
        // The scenario's own rules about a MatchingID: one order each, used once.
        let matching_id = match &e.matching_id {
            None => None,
            Some(text) if text.value.is_empty() => Some(OrderMatchingId::Empty),
            Some(text) => {
                let id: MatchingId = self.parse(src, text)?;
                if matches!(iccids, IccidSource::Range { .. }) || iccids.len() > 1 {
                    self.at(
                        src,
                        &text.referenced,
                        "a `matchingId` names one order: give it for a single `iccid`, not a list or range",
                    );
                    ok = false;
                }
                let place = self.place(src, &text.referenced);
                if let Some(first) = matching_ids.insert(text.value.clone(), place) {
                    self.at(
                        src,
                        &text.referenced,
                        format!("matchingId {:?} is already used at {first}", text.value),
                    );
                    ok = false;
                }
                Some(OrderMatchingId::Id(id))
            }
        };
        let confirmation_code_hash = match &e.confirmation_code {
            Some(code) if code.value.is_empty() => {
                self.at(
                    src,
                    &code.referenced,
                    "`confirmationCode` must not be empty",
                );
                ok = false;
                None
            }
            Some(code) => Some(sha256(code.value.as_bytes())),
            None => None,
        };
        // Which states take which associations is the profile module's rule; each error is
        // reported where the offending key is.
        match Order::new(state, eid, matching_id, confirmation_code_hash) {
            Ok(order) => ok.then_some(order),
            Err(errors) => {
                for error in errors {
                    let place = match error.field() {
                        OrderField::State => Some(state_place),
                        OrderField::Eid => e.eid.as_ref().map(|t| t.referenced),
                        OrderField::MatchingId => e.matching_id.as_ref().map(|t| t.referenced),
                        OrderField::ConfirmationCode => {
                            e.confirmation_code.as_ref().map(|t| t.referenced)
                        }
                    };
                    self.at(src, &place.unwrap_or(state_place), error.to_string());
                }
                None
            }
        }
    }

    fn devices(
        &mut self,
        loaded: &Loaded,
        operators: &[Operator],
        types: &[ProfileType],
        rules: &Rules,
    ) -> Vec<DeviceRule> {
        let mut out = Vec::new();
        for (src, f, _) in &loaded.files {
            for rule in &f.devices {
                let r = &rule.value;
                let profile_type = r
                    .matches
                    .profile_type
                    .as_ref()
                    .and_then(|t| self.known_type(*src, t, types));
                let operator = r
                    .matches
                    .operator
                    .as_ref()
                    .and_then(|o| self.known_operator(*src, o, operators));
                let eid = match &r.matches.eid {
                    Some(t) => self.parse::<Eid>(*src, t),
                    None => None,
                };
                let device_eid = match &r.device_eid {
                    Some(t) => self.parse::<Eid>(*src, t),
                    None => Some(DEFAULT_DEVICE_EID),
                };
                let timeline = self.timeline(*src, &r.timeline, device_eid, rules);
                if let (Some(device_eid), Some(timeline)) = (device_eid, timeline) {
                    out.push(DeviceRule {
                        profile_type,
                        eid,
                        operator,
                        device_eid,
                        timeline,
                    });
                }
            }
        }
        out
    }

    fn timeline(
        &mut self,
        src: usize,
        steps: &[file::DeviceStep],
        device_eid: Option<Eid>,
        rules: &Rules,
    ) -> Option<Vec<TimelineStep>> {
        let mut out = Vec::new();
        // Walk the timeline through the state machine, from a released order with a
        // Confirmation Code, so impossible sequences are found now rather than at run time.
        let eid = device_eid?;
        let mut profile = Profile::available(
            "8900000000000000001".parse().ok()?,
            "check".into(),
            "check".into(),
        );
        profile.state = ProfileState::Released;
        profile.matching_id = Some(OrderMatchingId::Empty);
        profile.confirmation_code_hash = Some(Box::new([0; 32]));
        let mut history: Vec<&str> = Vec::new();
        for step in steps {
            let name = step.event.value;
            if (step.error_reason.is_some() || step.bpp_command_id.is_some())
                && name != DeviceEventName::InstallFailure
            {
                self.at(
                    src,
                    &step.event.referenced,
                    "`errorReason` and `bppCommandId` belong to `install-failure` only",
                );
                return None;
            }
            let times = step.times.unwrap_or(1);
            if times == 0 || times > MAX_TIMES {
                self.at(
                    src,
                    &step.event.referenced,
                    format!("`times` must be 1 to {MAX_TIMES}"),
                );
                return None;
            }
            let event = name.event(step.error_reason, step.bpp_command_id);
            for i in 0..times {
                let simulated = Event::Device { eid, event };
                match transition(
                    &profile,
                    &simulated,
                    rules,
                    time::OffsetDateTime::UNIX_EPOCH,
                ) {
                    Ok(s) => profile = s.next,
                    Err(refusal) => {
                        let after = if history.is_empty() {
                            "the release".to_string()
                        } else {
                            history.join(", ")
                        };
                        self.at(
                            src,
                            &step.event.referenced,
                            format!(
                                "timeline step {:?} cannot happen after {after}: {refusal}",
                                event.name()
                            ),
                        );
                        return None;
                    }
                }
                out.push(TimelineStep {
                    after: if i == 0 {
                        step.after.map_or(Duration::ZERO, |d| d.0)
                    } else {
                        Duration::ZERO
                    },
                    event,
                });
                history.push(event.name());
            }
        }
        Some(out)
    }

    fn faults(
        &mut self,
        loaded: &Loaded,
        operators: &[Operator],
        types: &[ProfileType],
        inventory: &HashMap<IccidKey, u32>,
    ) -> Vec<FaultSpec> {
        let mut out = Vec::new();
        let mut index = 0;
        for (src, f, _) in &loaded.files {
            for rule in &f.faults {
                let r = &rule.value;
                let name = r.name.clone().unwrap_or_else(|| format!("faults[{index}]"));
                index += 1;
                let m = &r.matches;
                let mut ok = true;
                let function = match &m.function {
                    Some(t) => {
                        let f = Function::ALL
                            .into_iter()
                            .find(|f| f.path_segment() == t.value || f.name() == t.value);
                        if f.is_none() {
                            self.at(
                                *src,
                                &t.referenced,
                                format!(
                                    "unknown function {:?}; expected one of downloadOrder, confirmOrder, cancelOrder, releaseProfile",
                                    t.value
                                ),
                            );
                            ok = false;
                        }
                        f
                    }
                    None => None,
                };
                let iccid = match &m.iccid {
                    Some(t) => {
                        let parsed = self.parse::<Iccid>(*src, t).map(|i| i.key());
                        if parsed.is_some_and(|k| !inventory.contains_key(&k)) {
                            self.at(
                                *src,
                                &t.referenced,
                                format!("ICCID {} is not in the inventory", t.value),
                            );
                            ok = false;
                        }
                        ok &= parsed.is_some();
                        parsed
                    }
                    None => None,
                };
                let eid = match &m.eid {
                    Some(t) => {
                        let parsed = self.parse::<Eid>(*src, t);
                        ok &= parsed.is_some();
                        parsed
                    }
                    None => None,
                };
                let profile_type = match &m.profile_type {
                    Some(t) => {
                        let known = self.known_type(*src, t, types);
                        ok &= known.is_some();
                        known
                    }
                    None => None,
                };
                let operator = match &m.operator {
                    Some(o) => {
                        let known = self.known_operator(*src, o, operators);
                        ok &= known.is_some();
                        known
                    }
                    None => None,
                };
                let error = match &r.error {
                    Some(text) => match status_code_by_name(&text.value) {
                        Some(code) => Some((
                            code,
                            r.message
                                .clone()
                                .unwrap_or_else(|| format!("injected fault ({name})")),
                        )),
                        None => {
                            self.at(
                                *src,
                                &text.referenced,
                                format!(
                                    "unknown status {:?}: use a catalog name such as iccid-unknown or profile-type-unavailable, or subject/reason such as 8.2.1/3.3",
                                    text.value
                                ),
                            );
                            ok = false;
                            None
                        }
                    },
                    None => None,
                };
                let notification = r.target == FaultTarget::Notification;
                let mut misplaced = Vec::new();
                if notification {
                    for (given, key) in [
                        (r.error.is_some(), "error"),
                        (r.close, "close"),
                        (m.function.is_some(), "match.function"),
                    ] {
                        if given {
                            misplaced.push(key);
                        }
                    }
                } else {
                    for (given, key) in [
                        (r.drop, "drop"),
                        (r.duplicate, "duplicate"),
                        (m.notification_point.is_some(), "match.notificationPoint"),
                    ] {
                        if given {
                            misplaced.push(key);
                        }
                    }
                }
                if !misplaced.is_empty() {
                    let target = if notification { "notification" } else { "es2" };
                    self.at(
                        *src,
                        &rule.referenced,
                        format!(
                            "fault {name:?}: {} cannot be used with target {target}",
                            misplaced.join(", ")
                        ),
                    );
                    ok = false;
                }
                let acts = if notification {
                    r.drop || r.duplicate || r.delay.is_some()
                } else {
                    r.error.is_some() || r.delay.is_some() || r.close
                };
                if !acts {
                    let what = if notification {
                        "`drop`, `duplicate` or `delay`"
                    } else {
                        "`error`, `delay` or `close`"
                    };
                    self.at(
                        *src,
                        &rule.referenced,
                        format!("fault {name:?} does nothing: give {what}"),
                    );
                    ok = false;
                }
                if r.error.is_some() && r.close {
                    self.at(
                        *src,
                        &rule.referenced,
                        format!("fault {name:?}: `error` and `close` exclude each other"),
                    );
                    ok = false;
                }
                if let Some(p) = r.probability {
                    if !(0.0..=1.0).contains(&p) {
                        self.at(
                            *src,
                            &rule.referenced,
                            format!("fault {name:?}: probability {p} is not between 0 and 1"),
                        );
                        ok = false;
                    }
                }
                if r.times == Some(0) {
                    self.at(
                        *src,
                        &rule.referenced,
                        format!("fault {name:?}: `times` must be at least 1"),
                    );
                    ok = false;
                }
                if ok {
                    out.push(FaultSpec {
                        name,
                        target: r.target,
                        point: m.notification_point.as_ref().map(|p| point_of(p.value)),
                        drop: r.drop,
                        duplicate: r.duplicate,
                        function,
                        iccid,
                        eid,
                        profile_type,
                        operator,
                        error,
                        delay: r.delay.map(|d| d.0),
                        close: r.close,
                        times: r.times,
                        probability: r.probability,
                        seed: r.seed.unwrap_or(0),
                    });
                }
            }
        }
        out
    }

    fn known_type(
        &mut self,
        src: usize,
        t: &Spanned<String>,
        types: &[ProfileType],
    ) -> Option<Arc<str>> {
        let found = types
            .iter()
            .find(|x| *x.id == *t.value)
            .map(|x| x.id.clone());
        if found.is_none() {
            self.at(
                src,
                &t.referenced,
                format!(
                    "profile type {:?} is not defined (profile types: {})",
                    t.value,
                    list(types.iter().map(|x| &*x.id))
                ),
            );
        }
        found
    }

    fn known_operator(
        &mut self,
        src: usize,
        o: &Spanned<String>,
        operators: &[Operator],
    ) -> Option<Arc<str>> {
        let found = operators
            .iter()
            .find(|x| *x.id == *o.value)
            .map(|x| x.id.clone());
        if found.is_none() {
            self.at(
                src,
                &o.referenced,
                format!(
                    "operator {:?} is not defined (operators: {})",
                    o.value,
                    list(operators.iter().map(|x| &*x.id))
                ),
            );
        }
        found
    }

    fn place(&self, src: usize, location: &Location) -> String {
        format!(
            "{}:{}:{}",
            self.sources[src].name,
            location.line(),
            location.column()
        )
    }
}

fn point_of(name: file::PointName) -> NotificationPoint {
    use file::PointName as P;
    match name {
        P::EligibilityAndRetryLimit => NotificationPoint::EligibilityAndRetryLimit,
        P::ConfirmationFailure => NotificationPoint::ConfirmationFailure,
        P::BppDownload => NotificationPoint::BppDownload,
        P::BppInstallation => NotificationPoint::BppInstallation,
        P::LocalEnable => NotificationPoint::LocalEnable,
        P::LocalDisable => NotificationPoint::LocalDisable,
        P::LocalDelete => NotificationPoint::LocalDelete,
    }
}

fn is_admin_protocol(v: &str) -> bool {
    v.strip_prefix("gsma/rsp/v").is_some_and(|rest| {
        let parts: Vec<&str> = rest.split('.').collect();
        parts.len() == 3
            && parts
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
    })
}

fn is_file_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
}

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = names.collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}
