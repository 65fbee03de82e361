//! Merging loaded files into one [`Scenario`] and checking everything YAML types cannot:
//! formats, Luhn digits, uniqueness, references between sections, possible initial states and
//! timelines. Every problem is collected with its place; any problem means no scenario.

mod devices;
mod faults;
mod inventory;
mod operators;
mod settings;

use std::sync::Arc;

use serde_saphyr::{Location, Spanned};

use super::error::{Collector, ScenarioErrors, Source};
use super::load::Loaded;
use super::{Operator, ProfileType, Scenario};

pub(super) fn build(loaded: Loaded) -> Result<Scenario, ScenarioErrors> {
    let mut c = Checker {
        sources: &loaded.sources,
        errors: Collector::default(),
    };
    let settings = c.settings(&loaded);
    let smds = c.smds(&loaded);
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

fn list<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let all: Vec<&str> = names.collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}
