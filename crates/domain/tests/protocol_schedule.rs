//! Visits against the schedule: window edges (first and last allowed day are in, one day beyond is a
//! deviation with its days off), unknown visit ids and visits not planned for the subject's arm.

use myolog_domain::protocol::{DayWindow, Protocol, VisitTiming};

fn load(name: &str, text: &str) -> Protocol {
    match Protocol::from_toml(name, text) {
        Ok(protocol) => protocol,
        Err(errors) => panic!("{name} does not validate:\n{errors}"),
    }
}

/// (arm, visit id, day since day 0, expected timing or error message)
type Case<'a> = (&'a str, &'a str, i32, Result<VisitTiming, &'a str>);

fn check(protocol: &Protocol, cases: &[Case<'_>]) {
    let differences: Vec<String> = cases
        .iter()
        .filter_map(|(arm, visit, day, expected)| {
            let actual = protocol
                .classify_visit(arm, visit, *day)
                .map_err(|error| error.to_string());
            let expected = expected.clone().map_err(str::to_string);
            (actual != expected).then(|| {
                format!("{arm} {visit} day {day}: expected {expected:?}, actual {actual:?}")
            })
        })
        .collect();
    assert!(differences.is_empty(), "{}", differences.join("\n"));
}

fn in_window(
    encounter: &str,
    target_day: i32,
    days_from_target: i32,
) -> Result<VisitTiming, &'static str> {
    Ok(VisitTiming::InWindow {
        encounter: encounter.to_string(),
        target_day,
        days_from_target,
    })
}

fn outside(
    encounter: &str,
    window: [i32; 2],
    days_outside: i32,
) -> Result<VisitTiming, &'static str> {
    let window = DayWindow {
        first_day: window[0],
        last_day: window[1],
    };
    Ok(VisitTiming::OutsideWindow {
        encounter: encounter.to_string(),
        window,
        days_outside,
    })
}

#[test]
fn stir_week_12_window_edges_and_unknown_visits() {
    let stir = load(
        "protocols/stir.toml",
        include_str!("../../../protocols/stir.toml"),
    );
    check(
        &stir,
        &[
            ("TOFA", "W12", 76, outside("W12", [77, 91], -1)),
            ("TOFA", "W12", 77, in_window("W12", 84, -7)),
            ("TOFA", "W12", 84, in_window("W12", 84, 0)),
            ("TOFA", "W12", 91, in_window("W12", 84, 7)),
            ("TOFA", "W12", 92, outside("W12", [77, 91], 1)),
            ("TOFA", "W12", 100, outside("W12", [77, 91], 9)),
            ("TOFA", "BL", 0, in_window("BL", 0, 0)),
            ("TOFA", "BL", -7, in_window("BL", 0, -7)),
            ("TOFA", "BL", 1, outside("BL", [-7, 0], 1)),
            ("TOFA", "W16", 119, in_window("W16", 112, 7)),
            (
                "TOFA",
                "W13",
                91,
                Err("unknown visit `W13`; expected one of SCR, BL, W4, W8, W12, W16"),
            ),
            (
                "PBO",
                "W12",
                84,
                Err("unknown arm `PBO`; expected one of TOFA"),
            ),
        ],
    );
}

#[test]
fn myojak_delayed_arm_only_visits() {
    let myojak = load(
        "protocols/myojak.toml",
        include_str!("../../../protocols/myojak.toml"),
    );
    check(
        &myojak,
        &[
            ("DELAYED", "W36", 252, in_window("W36", 252, 0)),
            ("DELAYED", "W36", 260, outside("W36", [245, 259], 1)),
            (
                "IMMED",
                "W36",
                252,
                Err(
                    "visit `W36` is not planned for arm `IMMED`; expected one of SCR, BL, W4, W8, W12, W16, W20, W24",
                ),
            ),
            ("IMMED", "W24", 160, outside("W24", [161, 175], -1)),
        ],
    );
    let deviation = myojak
        .classify_visit("IMMED", "W24", 160)
        .map(|timing| timing.is_deviation());
    assert_eq!(deviation, Ok(true));
}
