//! The inventory of each profile type: ICCIDs (lists and ranges, Luhn digits, uniqueness) and
//! the order state each entry starts in.

use std::collections::HashMap;

use serde_saphyr::{Location, Spanned};

use crate::ids::sha256;
use crate::ids::{luhn_check_digit, Eid, Iccid, IccidKey, MatchingId};
use crate::profile::{Order, OrderField, OrderMatchingId, ProfileState};
use crate::scenario::file::{self, ProfileEntry};
use crate::scenario::load::Loaded;
use crate::scenario::{IccidSource, InventoryEntry, ProfileType};

use super::Checker;

/// Most profiles a scenario may hold: far beyond any test, well below exhausting memory.
const MAX_PROFILES: usize = 20_000_000;

impl Checker<'_> {
    pub(super) fn inventory(
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

    pub(super) fn iccid_location(&self, entry: &Spanned<ProfileEntry>) -> Location {
        let e = &entry.value;
        e.iccid
            .as_ref()
            .map(|i| i.referenced)
            .or_else(|| e.range.as_ref().map(|r| r.referenced))
            .unwrap_or(entry.referenced)
    }

    pub(super) fn iccids(
        &mut self,
        src: usize,
        entry: &Spanned<ProfileEntry>,
    ) -> Option<IccidSource> {
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

    pub(super) fn iccid(&mut self, src: usize, text: &Spanned<String>) -> Option<Iccid> {
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

    pub(super) fn range(
        &mut self,
        src: usize,
        range: &Spanned<file::IccidRange>,
    ) -> Option<IccidSource> {
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

    pub(super) fn initial(
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
}
