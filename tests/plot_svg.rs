//! The hand-written SVG plot: well-formed (every tag closed in order), deterministic, and
//! holding one polyline per series with the series' points mapped inside the panel.

use dropjit::plot::{self, Chart, Series};

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
    let svg = plot::svg(&[chart(), chart()]);
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
    assert_eq!(plot::svg(&[chart()]), plot::svg(&[chart()]));
    let empty = Chart {
        series: Vec::new(),
        ..chart()
    };
    assert_balanced(&plot::svg(&[empty]));
}
