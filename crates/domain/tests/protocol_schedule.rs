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

/// MYOJAK through week 40 (CTX-MYOJAK, HRA-MYOJAK): weeks 28-36 are planned for both arms (the
/// immediate arm's 12-week follow-up, the delayed arm's last 12 weeks on drug); week 40 (the delayed
/// arm's 4-week safety follow-up) only for the delayed arm.
#[test]
fn myojak_schedule_through_week_40() {
    let myojak = load(
        "protocols/myojak.toml",
        include_str!("../../../protocols/myojak.toml"),
    );
    check(
        &myojak,
        &[
            ("DELAYED", "W36", 252, in_window("W36", 252, 0)),
            ("DELAYED", "W36", 260, outside("W36", [245, 259], 1)),
            ("IMMED", "W28", 196, in_window("W28", 196, 0)),
            ("IMMED", "W36", 252, in_window("W36", 252, 0)),
            ("DELAYED", "W40", 280, in_window("W40", 280, 0)),
            ("DELAYED", "W40", 273, in_window("W40", 280, -7)),
            ("DELAYED", "W40", 288, outside("W40", [273, 287], 1)),
            (
                "IMMED",
                "W40",
                280,
                Err(
                    "visit `W40` is not planned for arm `IMMED`; expected one of SCR, BL, W4, W8, W12, W16, W20, W24, W28, W32, W36",
                ),
            ),
            ("IMMED", "W24", 160, outside("W24", [161, 175], -1)),
        ],
    );
    let deviation = myojak
        .classify_visit("IMMED", "W24", 160)
        .map(|timing| timing.is_deviation());
    assert_eq!(deviation, Ok(true));

    // Each arm's epoch at weeks 24-40: the immediate arm is in follow-up from week 28, the delayed arm
    // on drug to week 36 and in follow-up at week 40.
    let epochs: Vec<(String, &str, &str)> = ["W24", "W28", "W32", "W36", "W40"]
        .iter()
        .map(|id| {
            let encounter = myojak.encounter(id).expect("a planned visit");
            let immediate = if encounter.applies_to("IMMED") {
                encounter.epoch_for("IMMED")
            } else {
                "-"
            };
            (id.to_string(), immediate, encounter.epoch_for("DELAYED"))
        })
        .collect();
    let expected = [
        ("W24", "PERIOD2", "PERIOD2"),
        ("W28", "FOLLOWUP", "PERIOD3"),
        ("W32", "FOLLOWUP", "PERIOD3"),
        ("W36", "FOLLOWUP", "PERIOD3"),
        ("W40", "-", "FOLLOWUP"),
    ];
    let expected: Vec<(String, &str, &str)> = expected
        .iter()
        .map(|(id, immediate, delayed)| (id.to_string(), *immediate, *delayed))
        .collect();
    assert_eq!(epochs, expected);
}
