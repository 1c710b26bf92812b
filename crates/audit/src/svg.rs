//! Hand-written SVG charts for the report: a line chart (one polyline per series), a waterfall
//! (bars sorted from best to worst) and a dot plot (one row per measure). No charting dependency:
//! the charts are a few hundred elements, and writing them directly keeps the report a single,
//! self-contained, deterministic file.
//!
//! Every data mark carries `data-*` attributes (series, label, value), so tests can read the series
//! back from the SVG and so can anyone auditing the picture.

use std::fmt::Write;

/// Ten distinguishable colours (Tableau 10), assigned to series in order.
pub const PALETTE: [&str; 10] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
    "#9c755f", "#bab0ac",
];

const WIDTH: f64 = 760.0;
const HEIGHT: f64 = 340.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 150.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 48.0;

/// Escapes text for XML content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// A number for SVG coordinates and data attributes: at most 2 decimals, no trailing zeros.
fn num(value: f64) -> String {
    let text = format!("{value:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    if text == "-0" {
        "0".to_string()
    } else {
        text.to_string()
    }
}

/// "Nice" axis ticks covering `[low, high]`: steps of 1, 2 or 5 x 10^k, about five of them.
pub fn ticks(low: f64, high: f64) -> Vec<f64> {
    let (low, high) = if high > low {
        (low, high)
    } else {
        (low - 1.0, low + 1.0)
    };
    let raw = (high - low) / 5.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let start = (low / step).floor() as i64;
    let end = (high / step).ceil() as i64;
    (start..=end).map(|i| i as f64 * step).collect()
}

/// Maps data values onto the plot's vertical pixel range.
struct YScale {
    low: f64,
    high: f64,
}

impl YScale {
    fn new(ticks: &[f64]) -> YScale {
        YScale {
            low: ticks.first().copied().unwrap_or(0.0),
            high: ticks.last().copied().unwrap_or(1.0),
        }
    }

    fn y(&self, value: f64) -> f64 {
        let span = (self.high - self.low).max(f64::EPSILON);
        TOP + (HEIGHT - TOP - BOTTOM) * (self.high - value) / span
    }
}

fn open(svg: &mut String, id: &str, title: &str) {
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" id="{id}" class="chart" viewBox="0 0 {w} {h}" width="{w}" height="{h}" font-family="sans-serif" font-size="12"><title>{t}</title><text x="{LEFT}" y="20" font-size="14" font-weight="bold">{t}</text>"#,
        id = escape(id),
        w = WIDTH,
        h = HEIGHT,
        t = escape(title)
    );
}

/// Horizontal grid lines with labels, and the y-axis title.
fn y_axis(svg: &mut String, scale: &YScale, ticks: &[f64], label: &str) {
    for tick in ticks {
        let y = num(scale.y(*tick));
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{LEFT}" x2="{x2}" y1="{y}" y2="{y}" stroke="#ddd"/><text x="{tx}" y="{y}" text-anchor="end" dominant-baseline="middle" fill="#555">{v}</text>"##,
            x2 = num(WIDTH - RIGHT),
            tx = num(LEFT - 6.0),
            v = num(*tick)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="14" y="{y}" transform="rotate(-90 14 {y})" text-anchor="middle" fill="#333">{l}</text>"##,
        y = num((TOP + HEIGHT - BOTTOM) / 2.0),
        l = escape(label)
    );
}

/// One line of a line chart: a name and a value per x position (gaps allowed).
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub values: Vec<Option<f64>>,
}

/// A line chart: one polyline per series over the categorical x positions, points marked, legend at
/// the right. A series with a gap is drawn through its recorded points only.
pub fn line_chart(
    id: &str,
    title: &str,
    x_labels: &[String],
    series: &[Series],
    y_label: &str,
) -> String {
    let values: Vec<f64> = series
        .iter()
        .flat_map(|s| s.values.iter().flatten().copied())
        .collect();
    let low = values
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .min(0.0);
    let high = values
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max)
        .max(1.0);
    let ticks = ticks(low, high);
    let scale = YScale::new(&ticks);
    let plot_width = WIDTH - LEFT - RIGHT;
    let x = |index: usize| {
        let n = x_labels.len().max(2) - 1;
        LEFT + 20.0 + (plot_width - 40.0) * index as f64 / n as f64
    };
    let mut svg = String::new();
    open(&mut svg, id, title);
    y_axis(&mut svg, &scale, &ticks, y_label);
    for (index, label) in x_labels.iter().enumerate() {
        let _ = write!(
            svg,
            r##"<text class="x-label" x="{x}" y="{y}" text-anchor="middle" fill="#333">{l}</text>"##,
            x = num(x(index)),
            y = num(HEIGHT - BOTTOM + 18.0),
            l = escape(label)
        );
    }
    for (index, s) in series.iter().enumerate() {
        let colour = PALETTE[index % PALETTE.len()];
        let points: Vec<(usize, f64)> = s
            .values
            .iter()
            .enumerate()
            .filter_map(|(i, v)| v.map(|v| (i, v)))
            .collect();
        let path: Vec<String> = points
            .iter()
            .map(|(i, v)| format!("{},{}", num(x(*i)), num(scale.y(*v))))
            .collect();
        let data: Vec<String> = s
            .values
            .iter()
            .map(|v| v.map(num).unwrap_or_default())
            .collect();
        let _ = write!(
            svg,
            r#"<polyline class="series" data-series="{n}" data-values="{d}" points="{p}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
            n = escape(&s.name),
            d = data.join(" "),
            p = path.join(" ")
        );
        for (i, v) in &points {
            let _ = write!(
                svg,
                r#"<circle class="point" data-series="{n}" data-value="{v}" cx="{cx}" cy="{cy}" r="3" fill="{colour}"><title>{n} {l}: {v}</title></circle>"#,
                n = escape(&s.name),
                l = escape(x_labels.get(*i).map_or("", String::as_str)),
                v = num(*v),
                cx = num(x(*i)),
                cy = num(scale.y(*v))
            );
        }
        let ly = TOP + 6.0 + 16.0 * index as f64;
        let _ = write!(
            svg,
            r#"<g class="legend"><line x1="{x1}" x2="{x2}" y1="{ly}" y2="{ly}" stroke="{colour}" stroke-width="3"/><text x="{tx}" y="{ly}" dominant-baseline="middle">{n}</text></g>"#,
            x1 = num(WIDTH - RIGHT + 14.0),
            x2 = num(WIDTH - RIGHT + 34.0),
            tx = num(WIDTH - RIGHT + 40.0),
            ly = num(ly),
            n = escape(&s.name)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One bar of a waterfall.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
    /// Category shown by colour and legend (e.g. the TIS category).
    pub category: String,
}

/// A waterfall: one bar per subject, sorted from the highest value to the lowest (ties by label),
/// with labelled horizontal reference lines (e.g. the TIS category thresholds). `categories` maps a
/// category to its colour, in legend order.
pub fn waterfall(
    id: &str,
    title: &str,
    bars: &[Bar],
    references: &[(f64, &str)],
    categories: &[(&str, &str)],
    y_label: &str,
) -> String {
    let mut bars = bars.to_vec();
    bars.sort_by(|a, b| {
        b.value
            .total_cmp(&a.value)
            .then_with(|| a.label.cmp(&b.label))
    });
    let high = bars
        .iter()
        .map(|b| b.value)
        .chain(references.iter().map(|r| r.0))
        .fold(1.0, f64::max);
    let low = bars.iter().map(|b| b.value).fold(0.0, f64::min);
    let ticks = ticks(low, high);
    let scale = YScale::new(&ticks);
    let mut svg = String::new();
    open(&mut svg, id, title);
    y_axis(&mut svg, &scale, &ticks, y_label);
    let plot_width = WIDTH - LEFT - RIGHT;
    let slot = plot_width / bars.len().max(1) as f64;
    let zero = scale.y(0.0);
    for (index, bar) in bars.iter().enumerate() {
        let colour = categories
            .iter()
            .find(|(c, _)| *c == bar.category)
            .map_or("#999", |(_, colour)| colour);
        let top = scale.y(bar.value.max(0.0));
        let height = (scale.y(bar.value.min(0.0)) - top).max(0.5);
        let x = LEFT + slot * index as f64 + slot * 0.15;
        let _ = write!(
            svg,
            r##"<rect class="bar" data-label="{l}" data-value="{v}" data-category="{c}" x="{x}" y="{y}" width="{w}" height="{h}" fill="{colour}"><title>{l}: {v} ({c})</title></rect><text x="{cx}" y="{ly}" text-anchor="middle" fill="#333">{l}</text><text x="{cx}" y="{vy}" text-anchor="middle" font-size="10" fill="#333">{v}</text>"##,
            l = escape(&bar.label),
            v = num(bar.value),
            c = escape(&bar.category),
            x = num(x),
            y = num(top),
            w = num(slot * 0.7),
            h = num(height),
            cx = num(x + slot * 0.35),
            ly = num(HEIGHT - BOTTOM + 18.0),
            vy = num(top - 4.0)
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" x2="{x2}" y1="{y}" y2="{y}" stroke="#333"/>"##,
        x2 = num(WIDTH - RIGHT),
        y = num(zero)
    );
    for (value, label) in references {
        let y = num(scale.y(*value));
        let _ = write!(
            svg,
            r##"<line class="reference" data-value="{v}" x1="{LEFT}" x2="{x2}" y1="{y}" y2="{y}" stroke="#333" stroke-dasharray="4 3"/><text x="{tx}" y="{y}" dominant-baseline="middle" font-size="11" fill="#333">{l}</text>"##,
            v = num(*value),
            x2 = num(WIDTH - RIGHT),
            tx = num(WIDTH - RIGHT + 6.0),
            l = escape(label)
        );
    }
    for (index, (category, colour)) in categories.iter().enumerate() {
        let ly = HEIGHT - BOTTOM - 16.0 * (categories.len() - index) as f64;
        let _ = write!(
            svg,
            r#"<g class="legend"><rect x="{x}" y="{y}" width="12" height="12" fill="{colour}"/><text x="{tx}" y="{ty}" dominant-baseline="middle">{c}</text></g>"#,
            x = num(WIDTH - RIGHT + 84.0),
            y = num(ly - 6.0),
            tx = num(WIDTH - RIGHT + 100.0),
            ty = num(ly),
            c = escape(category)
        );
    }
    svg.push_str("</svg>");
    svg
}

/// One row of a dot plot: a measure and one value per subject (label, value).
#[derive(Debug, Clone, PartialEq)]
pub struct DotRow {
    pub name: String,
    pub values: Vec<(String, f64)>,
}

/// A horizontal dot plot: one row per measure, a dot per subject, the row's mean as a bar mark, and
/// labelled vertical reference lines (e.g. 0 and the DOI's 20% improvement).
pub fn dot_plot(
    id: &str,
    title: &str,
    rows: &[DotRow],
    references: &[(f64, &str)],
    x_label: &str,
) -> String {
    let all: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.values.iter().map(|v| v.1))
        .chain(references.iter().map(|r| r.0))
        .collect();
    let low = all.iter().copied().fold(0.0, f64::min);
    let high = all.iter().copied().fold(1.0, f64::max);
    let ticks = ticks(low, high);
    let (t0, t1) = (
        ticks.first().copied().unwrap_or(0.0),
        ticks.last().copied().unwrap_or(1.0),
    );
    let left = 170.0;
    let right_edge = WIDTH - 40.0;
    let x = |v: f64| left + (right_edge - left) * (v - t0) / (t1 - t0).max(f64::EPSILON);
    let row_height = (HEIGHT - TOP - BOTTOM) / rows.len().max(1) as f64;
    let mut svg = String::new();
    open(&mut svg, id, title);
    for tick in &ticks {
        let _ = write!(
            svg,
            r##"<line class="grid" x1="{x}" x2="{x}" y1="{TOP}" y2="{y2}" stroke="#ddd"/><text x="{x}" y="{ty}" text-anchor="middle" fill="#555">{v}</text>"##,
            x = num(x(*tick)),
            y2 = num(HEIGHT - BOTTOM),
            ty = num(HEIGHT - BOTTOM + 16.0),
            v = num(*tick)
        );
    }
    let _ = write!(
        svg,
        r##"<text x="{cx}" y="{y}" text-anchor="middle" fill="#333">{l}</text>"##,
        cx = num((left + right_edge) / 2.0),
        y = num(HEIGHT - 10.0),
        l = escape(x_label)
    );
    for (value, label) in references {
        let _ = write!(
            svg,
            r##"<line class="reference" data-value="{v}" x1="{x}" x2="{x}" y1="{TOP}" y2="{y2}" stroke="#333" stroke-dasharray="4 3"/><text x="{x}" y="{ty}" text-anchor="middle" font-size="11" fill="#333">{l}</text>"##,
            v = num(*value),
            x = num(x(*value)),
            y2 = num(HEIGHT - BOTTOM),
            ty = num(TOP - 4.0),
            l = escape(label)
        );
    }
    for (index, row) in rows.iter().enumerate() {
        let cy = TOP + row_height * (index as f64 + 0.5);
        let _ = write!(
            svg,
            r##"<text x="{tx}" y="{y}" text-anchor="end" dominant-baseline="middle" fill="#333">{n}</text>"##,
            tx = num(left - 8.0),
            y = num(cy),
            n = escape(&row.name)
        );
        let n = row.values.len();
        for (i, (label, value)) in row.values.iter().enumerate() {
            // A small vertical jitter by subject order keeps equal values visible.
            let jitter = if n > 1 {
                (i as f64 / (n - 1) as f64 - 0.5) * row_height * 0.5
            } else {
                0.0
            };
            let _ = write!(
                svg,
                r##"<circle class="dot" data-row="{r}" data-label="{l}" data-value="{v}" cx="{cx}" cy="{cy}" r="4" fill="{c}" fill-opacity="0.8"><title>{r} {l}: {v}</title></circle>"##,
                r = escape(&row.name),
                l = escape(label),
                v = num(*value),
                cx = num(x(*value)),
                cy = num(cy + jitter),
                c = PALETTE[i % PALETTE.len()]
            );
        }
        if n > 0 {
            let mean = row.values.iter().map(|v| v.1).sum::<f64>() / n as f64;
            let _ = write!(
                svg,
                r##"<line class="mean" data-row="{r}" data-value="{v}" x1="{x}" x2="{x}" y1="{y1}" y2="{y2}" stroke="#000" stroke-width="3"><title>{r} mean: {v}</title></line>"##,
                r = escape(&row.name),
                v = num(mean),
                x = num(x(mean)),
                y1 = num(cy - row_height * 0.38),
                y2 = num(cy + row_height * 0.38)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        match roxmltree::Document::parse(svg) {
            Ok(doc) => doc,
            Err(error) => panic!("SVG does not parse: {error}\n{svg}"),
        }
    }

    fn with_class<'a>(
        doc: &'a roxmltree::Document<'a>,
        class: &str,
    ) -> Vec<roxmltree::Node<'a, 'a>> {
        doc.descendants()
            .filter(|n| n.attribute("class") == Some(class))
            .collect()
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let cases: [(f64, f64, &[f64]); 4] = [
            (0.0, 43.0, &[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]),
            (0.0, 1.0, &[0.0, 0.2, 0.4, 0.6, 0.8, 1.0]),
            (-30.0, 80.0, &[-50.0, 0.0, 50.0, 100.0]),
            (5.0, 5.0, &[4.0, 4.5, 5.0, 5.5, 6.0]),
        ];
        for (low, high, expected) in cases {
            let got = ticks(low, high);
            assert_eq!(got.len(), expected.len(), "{low}..{high}: {got:?}");
            for (g, e) in got.iter().zip(expected) {
                assert!((g - e).abs() < 1e-9, "{low}..{high}: {got:?}");
            }
        }
    }

    #[test]
    fn line_chart_has_one_polyline_per_series_with_its_values() {
        let series = vec![
            Series {
                name: "S001".into(),
                values: vec![Some(24.0), Some(19.0), None, Some(4.0)],
            },
            Series {
                name: "S<2>".into(),
                values: vec![Some(27.0), Some(20.5), Some(15.0), Some(13.0)],
            },
        ];
        let labels: Vec<String> = ["baseline", "week4", "week8", "week12"]
            .map(String::from)
            .to_vec();
        let svg = line_chart("cdasi", "CDASI & co", &labels, &series, "activity");
        let doc = parse(&svg);
        let lines = with_class(&doc, "series");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].attribute("data-values"), Some("24 19  4"));
        assert_eq!(lines[1].attribute("data-series"), Some("S<2>"));
        assert_eq!(
            lines[0].attribute("points").map(|p| p.split(' ').count()),
            Some(3)
        );
        assert_eq!(with_class(&doc, "point").len(), 7);
    }

    #[test]
    fn waterfall_bars_are_sorted_best_first() {
        let bars: Vec<Bar> = [
            ("S1", 20.0),
            ("S2", 62.5),
            ("S3", 35.0),
            ("S4", 62.5),
            ("S5", 0.0),
        ]
        .map(|(l, v)| Bar {
            label: l.into(),
            value: v,
            category: "x".into(),
        })
        .to_vec();
        let svg = waterfall(
            "tis",
            "TIS",
            &bars,
            &[(20.0, "minimal"), (40.0, "moderate")],
            &[("x", "#123456")],
            "TIS",
        );
        let doc = parse(&svg);
        let got: Vec<(String, String)> = with_class(&doc, "bar")
            .iter()
            .map(|b| {
                (
                    b.attribute("data-label").unwrap_or_default().to_string(),
                    b.attribute("data-value").unwrap_or_default().to_string(),
                )
            })
            .collect();
        let expected: Vec<(String, String)> = [
            ("S2", "62.5"),
            ("S4", "62.5"),
            ("S3", "35"),
            ("S1", "20"),
            ("S5", "0"),
        ]
        .map(|(l, v)| (l.to_string(), v.to_string()))
        .to_vec();
        assert_eq!(got, expected);
        assert_eq!(with_class(&doc, "reference").len(), 2);
    }

    #[test]
    fn dot_plot_has_a_row_mean_per_measure() {
        let rows = vec![
            DotRow {
                name: "PhGA".into(),
                values: vec![("S1".into(), 30.0), ("S2".into(), 50.0)],
            },
            DotRow {
                name: "MMT".into(),
                values: vec![("S1".into(), -5.0)],
            },
        ];
        let svg = dot_plot(
            "core",
            "Core set",
            &rows,
            &[(0.0, "0"), (20.0, "DOI 20%")],
            "improvement %",
        );
        let doc = parse(&svg);
        assert_eq!(with_class(&doc, "dot").len(), 3);
        let means: Vec<&str> = with_class(&doc, "mean")
            .iter()
            .filter_map(|m| m.attribute("data-value"))
            .collect();
        assert_eq!(means, ["40", "-5"]);
    }

    #[test]
    fn numbers_and_text_are_written_safely() {
        assert_eq!(
            [num(1.0), num(2.345), num(-0.001), num(62.5)],
            ["1", "2.35", "0", "62.5"].map(String::from)
        );
        assert_eq!(escape(r#"a<b & "c"'"#), "a&lt;b &amp; &quot;c&quot;&#39;");
    }
}
