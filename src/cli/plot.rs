//! Line charts as hand-written SVG: panels side by side, each with axes, ticks, a legend and
//! one polyline per series. No dependency; the output is a pure function of the input (numbers
//! are printed with fixed decimals), so the same curves give the same bytes.

use std::fmt::Write;

/// One curve: a name for the legend, a colour and its points in data coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Series {
    /// The legend's label.
    pub name: String,
    /// An SVG colour (`#1f77b4`).
    pub color: String,
    /// Dashed rather than solid.
    pub dashed: bool,
    /// `(x, y)` points in drawing order.
    pub points: Vec<(f64, f64)>,
}

/// One panel: a title, axis labels and its series.
#[derive(Clone, Debug, PartialEq)]
pub struct Chart {
    /// Shown above the panel.
    pub title: String,
    /// Under the x axis.
    pub x_label: String,
    /// Beside the y axis.
    pub y_label: String,
    /// The curves.
    pub series: Vec<Series>,
}

const PANEL_WIDTH: f64 = 480.0;
const PANEL_HEIGHT: f64 = 360.0;
/// Margins inside a panel: left, right, top, bottom.
const MARGIN: (f64, f64, f64, f64) = (64.0, 16.0, 36.0, 52.0);

/// The charts side by side as one SVG document.
pub fn svg(charts: &[Chart]) -> String {
    let width = PANEL_WIDTH * charts.len().max(1) as f64;
    let mut out = String::new();
    let _ = writeln!(
        out,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0}" height="{PANEL_HEIGHT:.0}" viewBox="0 0 {width:.0} {PANEL_HEIGHT:.0}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(
        out,
        r#"<rect width="{width:.0}" height="{PANEL_HEIGHT:.0}" fill="white"/>"#
    );
    for (i, chart) in charts.iter().enumerate() {
        panel(&mut out, chart, i as f64 * PANEL_WIDTH);
    }
    out.push_str("</svg>\n");
    out
}

/// Maps data coordinates onto a panel's plotting area.
struct Frame {
    x: Axis,
    y: Axis,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        self.left + (x - self.x.low) / (self.x.high - self.x.low) * (self.right - self.left)
    }

    fn py(&self, y: f64) -> f64 {
        self.bottom - (y - self.y.low) / (self.y.high - self.y.low) * (self.bottom - self.top)
    }
}

fn panel(out: &mut String, chart: &Chart, offset: f64) {
    let points = chart.series.iter().flat_map(|s| s.points.iter());
    let (xs, ys): (Vec<f64>, Vec<f64>) = points
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .copied()
        .unzip();
    let frame = Frame {
        x: Axis::covering(&xs),
        y: Axis::covering(&ys),
        left: offset + MARGIN.0,
        right: offset + PANEL_WIDTH - MARGIN.1,
        top: MARGIN.2,
        bottom: PANEL_HEIGHT - MARGIN.3,
    };
    let _ = writeln!(out, "<g>");
    let title_x = offset + PANEL_WIDTH / 2.0;
    let _ = writeln!(
        out,
        r#"<text x="{title_x:.1}" y="20" text-anchor="middle" font-size="14">{}</text>"#,
        escape(&chart.title)
    );
    axes(out, &frame, chart);
    for series in &chart.series {
        curve(out, &frame, series);
    }
    legend(out, &frame, &chart.series);
    let _ = writeln!(out, "</g>");
}

fn axes(out: &mut String, f: &Frame, chart: &Chart) {
    let (l, r, t, b) = (f.left, f.right, f.top, f.bottom);
    let _ = writeln!(
        out,
        r##"<rect x="{l:.1}" y="{t:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#444"/>"##,
        r - l,
        b - t
    );
    for x in f.x.ticks() {
        let px = f.px(x);
        let _ = writeln!(
            out,
            r##"<line x1="{px:.1}" y1="{b:.1}" x2="{px:.1}" y2="{:.1}" stroke="#444"/>"##,
            b + 5.0
        );
        let _ = writeln!(
            out,
            r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            b + 18.0,
            f.x.label(x)
        );
    }
    for y in f.y.ticks() {
        let py = f.py(y);
        let _ = writeln!(
            out,
            r##"<line x1="{l:.1}" y1="{py:.1}" x2="{r:.1}" y2="{py:.1}" stroke="#ddd"/>"##
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
            l - 6.0,
            py + 4.0,
            f.y.label(y)
        );
    }
    let cx = (l + r) / 2.0;
    let _ = writeln!(
        out,
        r#"<text x="{cx:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        b + 38.0,
        escape(&chart.x_label)
    );
    let (yx, yy) = (l - 48.0, (t + b) / 2.0);
    let _ = writeln!(
        out,
        r#"<text x="{yx:.1}" y="{yy:.1}" text-anchor="middle" transform="rotate(-90 {yx:.1} {yy:.1})">{}</text>"#,
        escape(&chart.y_label)
    );
}

fn curve(out: &mut String, f: &Frame, series: &Series) {
    let mut points = String::new();
    for &(x, y) in series
        .points
        .iter()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
    {
        let _ = write!(
            points,
            "{}{:.1},{:.1}",
            if points.is_empty() { "" } else { " " },
            f.px(x),
            f.py(y)
        );
    }
    let dash = if series.dashed {
        r#" stroke-dasharray="6 4""#
    } else {
        ""
    };
    let _ = writeln!(
        out,
        r#"<polyline fill="none" stroke="{}" stroke-width="2"{dash} points="{points}"><title>{}</title></polyline>"#,
        escape(&series.color),
        escape(&series.name)
    );
}

fn legend(out: &mut String, f: &Frame, series: &[Series]) {
    for (i, s) in series.iter().enumerate() {
        let y = f.top + 16.0 + 16.0 * i as f64;
        let x = f.right - 150.0;
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = writeln!(
            out,
            r#"<line x1="{x:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{}" stroke-width="2"{dash}/>"#,
            x + 24.0,
            escape(&s.color)
        );
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}">{}</text>"#,
            x + 30.0,
            y + 4.0,
            escape(&s.name)
        );
    }
}

/// A data range widened to round tick values, with the tick step.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Axis {
    low: f64,
    high: f64,
    step: f64,
}

impl Axis {
    /// The smallest range of whole steps (1, 2 or 5 times a power of ten, about five of them)
    /// covering `values`; `[0, 1]` without values.
    fn covering(values: &[f64]) -> Axis {
        let low = values.iter().copied().fold(f64::INFINITY, f64::min);
        let high = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let (low, high) = match (low.is_finite(), high > low) {
            (false, _) => (0.0, 1.0),
            (true, false) => (low - 0.5, high + 0.5),
            (true, true) => (low, high),
        };
        let rough = (high - low) / 5.0;
        let magnitude = 10f64.powf(rough.log10().floor());
        let step = [1.0, 2.0, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|&s| s >= rough)
            .unwrap_or(10.0 * magnitude);
        Axis {
            low: (low / step).floor() * step,
            high: (high / step).ceil() * step,
            step,
        }
    }

    fn ticks(&self) -> Vec<f64> {
        let count = ((self.high - self.low) / self.step).round() as usize;
        (0..=count)
            .map(|i| self.low + i as f64 * self.step)
            .collect()
    }

    /// A tick's label with as many decimals as the step needs.
    fn label(&self, value: f64) -> String {
        let decimals = (-self.step.log10().floor()).max(0.0) as usize;
        format!("{value:.decimals$}")
    }
}

/// Escapes text for SVG content and attributes.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_round_to_1_2_5_steps() {
        let a = Axis::covering(&[0.13, 0.97]);
        assert_eq!((a.low, a.high, a.step), (0.0, 1.0, 0.2));
        assert_eq!(a.label(0.4), "0.4");
        let a = Axis::covering(&[1.0, 100.0]);
        assert_eq!((a.low, a.high, a.step), (0.0, 100.0, 20.0));
        assert_eq!(a.ticks().len(), 6);
        assert_eq!(
            Axis::covering(&[]),
            Axis {
                low: 0.0,
                high: 1.0,
                step: 0.2
            }
        );
    }

    #[test]
    fn degenerate_ranges_give_a_few_ticks() {
        // A loss can be infinite, and values can differ by a few subnormals (the step then
        // underflows to 0); neither may ask for more than a handful of ticks.
        for values in [
            [0.0, f64::INFINITY],
            [f64::NEG_INFINITY, 1.0],
            [0.0, 5e-324],
            [1e-320, 3e-320],
            [-f64::MAX, f64::MAX],
            [f64::NAN, 1.0],
        ] {
            let ticks = Axis::covering(&values).ticks();
            assert!(ticks.len() <= 12, "{values:?}: {} ticks", ticks.len());
        }
    }

    // The whole document: well-formed (every tag closed in order), deterministic, and holding
    // one polyline per series with the series' points mapped inside the panel.

    fn chart() -> Chart {
        let series = |name: &str, color: &str, dashed, f: fn(f64) -> f64| Series {
            name: name.to_string(),
            color: color.to_string(),
            dashed,
            points: (1..=20).map(|e| (e as f64, f(e as f64))).collect(),
        };
        Chart {
            title: "accuracy <p = 0 & 0.5>".to_string(),
            x_label: "epoch".to_string(),
            y_label: "accuracy".to_string(),
            series: vec![
                series("train p=0", "#1f77b4", false, |e| 1.0 - 0.5 / e),
                series("test p=0", "#1f77b4", true, |e| 0.9 - 0.5 / e),
                series("train p=0.5", "#d62728", false, |e| 0.95 - 0.6 / e),
                series("test p=0.5", "#d62728", true, |e| 0.92 - 0.6 / e),
            ],
        }
    }

    /// Checks that tags nest: every `<a ...>` is closed by `</a>` in order, `<a .../>` closes itself.
    fn assert_balanced(svg: &str) {
        let mut stack: Vec<String> = Vec::new();
        let mut rest = svg;
        while let Some(start) = rest.find('<') {
            let end = rest[start..].find('>').expect("every tag ends") + start;
            let tag = &rest[start + 1..end];
            assert!(!tag.contains('<'), "a tag inside a tag: {tag}");
            if let Some(name) = tag.strip_prefix('/') {
                assert_eq!(stack.pop().as_deref(), Some(name.trim()), "closing {name}");
            } else if !tag.ends_with('/') {
                stack.push(tag.split_whitespace().next().unwrap().to_string());
            }
            rest = &rest[end + 1..];
        }
        assert!(stack.is_empty(), "unclosed: {stack:?}");
    }

    #[test]
    fn svg_is_well_formed_and_holds_every_curve() {
        let svg = svg(&[chart(), chart()]);
        assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"960\""));
        assert_balanced(&svg);
        assert_eq!(svg.matches("<polyline").count(), 8);
        for name in ["train p=0", "test p=0", "train p=0.5", "test p=0.5"] {
            assert_eq!(svg.matches(&format!("<title>{name}</title>")).count(), 2);
        }
        // The title is escaped, not markup.
        assert!(svg.contains("accuracy &lt;p = 0 &amp; 0.5&gt;"));
        // Every polyline has 20 points, all inside the 960 x 360 picture.
        for line in svg.lines().filter(|l| l.starts_with("<polyline")) {
            let points = line
                .split("points=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            let pairs: Vec<(f64, f64)> = points
                .split(' ')
                .map(|p| {
                    let (x, y) = p.split_once(',').unwrap();
                    (x.parse().unwrap(), y.parse().unwrap())
                })
                .collect();
            assert_eq!(pairs.len(), 20);
            assert!(
                pairs
                    .iter()
                    .all(|&(x, y)| (0.0..=960.0).contains(&x) && (0.0..=360.0).contains(&y))
            );
        }
    }

    #[test]
    fn svg_is_deterministic_and_tolerates_empty_charts() {
        assert_eq!(svg(&[chart()]), svg(&[chart()]));
        let empty = Chart {
            series: Vec::new(),
            ..chart()
        };
        assert_balanced(&svg(&[empty]));
    }
}
