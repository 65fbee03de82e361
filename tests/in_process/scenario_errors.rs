//! Broken scenarios are refused with the exact place and message of every mistake.
//!
//! Each file in `tests/broken/` holds one kind of mistake; the expected first line of the
//! diagnostic is `FILE:LINE:COLUMN: MESSAGE` (or `FILE: MESSAGE` where there is no place).

use std::path::Path;

use smdpp_mock::Scenario;

const CASES: &[(&str, &str)] = &[
    (
        "01-unknown-key.yaml",
        "tests/broken/01-unknown-key.yaml:3:5: unknown field `colour`, expected one of id, requesterIdentifiers, certificateNames, allowedSourceIps, callback",
    ),
    (
        "02-wrong-type.yaml",
        "tests/broken/02-wrong-type.yaml:7:54: `count` must be a whole number (0 or more), not \"many\"",
    ),
    (
        "03-bad-luhn.yaml",
        "tests/broken/03-bad-luhn.yaml:7:16: ICCID 8944500100000000005 has a wrong Luhn check digit: the last digit should be 4",
    ),
    (
        "04-bad-iccid-format.yaml",
        "tests/broken/04-bad-iccid-format.yaml:7:41: ICCID \"89445001000000000X4\" is not 19 or 20 digits (a 19-digit ICCID may end in the pad F)",
    ),
    (
        "05-duplicate-iccid.yaml",
        "tests/broken/05-duplicate-iccid.yaml:11:16: ICCID 8944500100000000012F is already in the inventory (entry at tests/broken/05-duplicate-iccid.yaml:7:9)",
    ),
    (
        "06-undefined-owner.yaml",
        "tests/broken/06-undefined-owner.yaml:5:12: owner \"test-mvno\" is not an operator of this scenario (operators: test-mno)",
    ),
    (
        "07-bad-eid.yaml",
        "tests/broken/07-bad-eid.yaml:9:14: EID \"8904903212345123451234567890123\" is not exactly 32 digits",
    ),
    (
        "08-linked-without-eid.yaml",
        "tests/broken/08-linked-without-eid.yaml:8:16: state Linked needs an `eid`: the order is linked to an eUICC",
    ),
    (
        "09-available-with-matching-id.yaml",
        "tests/broken/09-available-with-matching-id.yaml:8:21: state Available cannot have a `matchingId`: only confirmed orders (Confirmed and later) do",
    ),
    (
        "10-unknown-state.yaml",
        "tests/broken/10-unknown-state.yaml:8:16: unknown variant `Ready`, expected one of Available, Allocated, Linked, Confirmed, Released, Downloaded, Installed, Error, Unavailable",
    ),
    (
        "11-duplicate-operator.yaml",
        "tests/broken/11-duplicate-operator.yaml:4:9: operator \"test-mno\" is already defined at tests/broken/11-duplicate-operator.yaml:2:9",
    ),
    (
        "12-unknown-fault-status.yaml",
        "tests/broken/12-unknown-fault-status.yaml:5:12: unknown status \"profile-type-exhausted\": use a catalog name such as iccid-unknown or profile-type-unavailable, or subject/reason such as 8.2.1/3.3",
    ),
    (
        "13-unknown-fault-function.yaml",
        "tests/broken/13-unknown-fault-function.yaml:4:24: unknown function \"getProfileStatus\"; expected one of downloadOrder, confirmOrder, cancelOrder, releaseProfile",
    ),
    (
        "14-impossible-timeline.yaml",
        "tests/broken/14-impossible-timeline.yaml:5:29: timeline step \"install success\" cannot happen after the release: install success is not possible in state Released",
    ),
    (
        "15-bad-duration.yaml",
        "tests/broken/15-bad-duration.yaml:5:18: \"1.5s\" is not a duration such as 250ms, 2s, 5m, 1h or 7d",
    ),
    (
        "16-bad-network.yaml",
        "tests/broken/16-bad-network.yaml:3:24: \"10.0.0.0/33\": the prefix length must be 0 to 32",
    ),
    (
        "17-bad-callback-url.yaml",
        "tests/broken/17-bad-callback-url.yaml:4:12: callback.url: \"ftp://receiver.example/notify\" is not an http:// or https:// URL with a host",
    ),
    (
        "18-missing-include.yaml",
        "tests/broken/18-missing-include.yaml:1:11: include \"base-that-does-not-exist.yaml\": no such file (tests/broken/base-that-does-not-exist.yaml); the built-in default scenario is included as \"builtin:default\"",
    ),
    (
        "19-no-operators.yaml",
        "tests/broken/19-no-operators.yaml: no operators: a scenario needs at least one under `operators`",
    ),
    (
        "20-entry-without-iccids.yaml",
        "tests/broken/20-entry-without-iccids.yaml:7:9: a profile entry needs exactly one of `iccid`, `iccids` and `range`",
    ),
    (
        "21-duplicate-key.yaml",
        "tests/broken/21-duplicate-key.yaml:3:5: duplicate mapping key: id, set DuplicateKeyPolicy in Options if acceptable",
    ),
    (
        "22-bad-address.yaml",
        "tests/broken/22-bad-address.yaml:2:12: smdp.address: \"smdp_example.com\" is not a valid FQDN: only letters, digits, '-' and '.' are allowed",
    ),
    (
        "23-limit-zero.yaml",
        "tests/broken/23-limit-zero.yaml:3:23: smdp.limits.downloadAttempts: must be at least 1",
    ),
    (
        "24-fault-does-nothing.yaml",
        "tests/broken/24-fault-does-nothing.yaml:4:5: fault \"idle\" does nothing: give `error`, `delay` or `close`",
    ),
    (
        "25-yaml-syntax.yaml",
        "tests/broken/25-yaml-syntax.yaml:3:3: while parsing a block collection, did not find expected '-' indicator",
    ),
];

#[test]
fn every_broken_file_is_refused_with_its_place_and_message() {
    assert!(CASES.len() >= 15);
    for (file, expected) in CASES {
        let path = Path::new("tests/broken").join(file);
        let errors = match Scenario::load(&path) {
            Ok(_) => panic!("{file} was accepted"),
            Err(e) => e,
        };
        assert_eq!(errors.0[0].to_string(), *expected, "{file}");
    }
    // And nothing in the folder goes untested.
    let files = std::fs::read_dir("tests/broken").unwrap().count();
    assert_eq!(files, CASES.len());
}

#[test]
fn all_semantic_errors_are_reported_at_once() {
    let yaml = r#"
operators:
  - id: test-mno
profileTypes:
  - id: PT
    owner: nobody
  - id: PT2
    owner: test-mno
    profiles:
      - iccid: "8944500100000000005"
      - iccid: "8944500100000000012"
        state: Installed
faults:
  - match: { function: nope }
    error: execution-error
"#;
    let errors = Scenario::from_yaml(yaml).unwrap_err();
    let lines: Vec<String> = errors.0.iter().map(|d| d.to_string()).collect();
    assert_eq!(
        lines,
        vec![
            "<scenario>:6:12: owner \"nobody\" is not an operator of this scenario (operators: test-mno)",
            "<scenario>:10:16: ICCID 8944500100000000005 has a wrong Luhn check digit: the last digit should be 4",
            "<scenario>:12:16: state Installed needs an `eid`: the order is linked to an eUICC",
            "<scenario>:14:24: unknown function \"nope\"; expected one of downloadOrder, confirmOrder, cancelOrder, releaseProfile",
        ]
    );
    // The rendered form shows the offending line with a caret.
    let rendered = errors.to_string();
    assert!(
        rendered.contains("10 |       - iccid: \"8944500100000000005\"\n   |                ^"),
        "{rendered}"
    );
}

#[test]
fn include_cycles_are_refused() {
    let dir = std::env::temp_dir().join(format!("smdpp-cycle-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("a.yaml"),
        "include: [b.yaml]\noperators:\n  - id: a\n",
    )
    .unwrap();
    std::fs::write(dir.join("b.yaml"), "include: [a.yaml]\n").unwrap();
    let errors = Scenario::load(&dir.join("a.yaml")).unwrap_err();
    let first = errors.0[0].to_string();
    assert!(
        first.ends_with("b.yaml:1:11: include \"a.yaml\" forms a cycle"),
        "{first}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn every_parse_level_error_is_reported_with_its_place() {
    let text = r#"operators:
  - id: a
    colour: blue
profileTypes:
  - id: X
    owner: a
    profiles: [{ range: { start: "894450010000000000", count: five } }]
faults:
  - match: { functon: downloadOrder }
"#;
    let errors = Scenario::from_yaml(text).unwrap_err();
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(shown.len(), 3, "{shown:#?}");
    assert!(
        shown[0].starts_with("<scenario>:3:5: unknown field `colour`"),
        "{}",
        shown[0]
    );
    assert!(
        shown[2].starts_with("<scenario>:9:14: unknown field `functon`"),
        "{}",
        shown[2]
    );
}

#[test]
fn a_value_of_the_wrong_kind_names_the_key_and_the_kind() {
    let text = r#"operators: [{ id: a }]
profileTypes:
  - id: X
    owner: a
    profiles: [{ range: { start: "894450010000000000", count: five } }]
"#;
    let errors = Scenario::from_yaml(text).unwrap_err();
    assert_eq!(
        errors.0[0].to_string(),
        "<scenario>:5:63: `count` must be a whole number (0 or more), not \"five\""
    );
}

#[test]
fn one_typo_is_reported_once_at_its_root() {
    let text = r#"operators: [{ id: test-mno }]
profileTypes:
  - id: X
    owner: test-mn
    profiles: [{ iccid: "8944500100000000004" }]
devices:
  - match: { profileType: X }
    timeline: [{ after: 1s, event: download }]
faults:
  - match: { profileType: X }
    error: execution-error
"#;
    let errors = Scenario::from_yaml(text).unwrap_err();
    let shown: Vec<String> = errors.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        shown,
        [
            r#"<scenario>:4:12: owner "test-mn" is not an operator of this scenario (operators: test-mno)"#
        ],
    );
}
