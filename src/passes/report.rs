//! What the pipeline reports: per pass, in order, its name, its [`Stats`], and if asked its
//! time and the graph's text after it. Each view is a value implementing `Display`:
//! the report itself (one `NAME: STATS` line per pass), [`PassReport::dumps`] for
//! `--print-after-all` and [`PassReport::times`] for `--time-passes`.

use std::fmt;
use std::time::Duration;

use super::Stats;

/// One pass's entry in a [`PassReport`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PassRecord {
    /// The pass's function name (`eliminate_dropout`, ...).
    pub name: &'static str,
    /// What the pass did.
    pub stats: Stats,
    /// How long the pass alone took (hooks excluded), if timing was on.
    pub elapsed: Option<Duration>,
    /// The graph's textual IR after the pass, if dumps were on.
    pub dump: Option<String>,
}

/// Every pass the pipeline ran, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PassReport {
    /// One record per pass, in the order they ran.
    pub passes: Vec<PassRecord>,
}

impl PassReport {
    /// Every recorded dump, each headed `# after NAME` (empty if dumps were off).
    pub fn dumps(&self) -> Dumps<'_> {
        Dumps(self)
    }

    /// A table of the passes' times and stats, with a total (`-` where timing was off).
    pub fn times(&self) -> Times<'_> {
        Times(self)
    }
}

/// `NAME: STATS`, one line per pass: what the snapshots show.
impl fmt::Display for PassReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pass in &self.passes {
            writeln!(f, "{}: {}", pass.name, pass.stats)?;
        }
        Ok(())
    }
}

/// The graph after each pass; see [`PassReport::dumps`].
pub struct Dumps<'a>(&'a PassReport);

impl fmt::Display for Dumps<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for pass in &self.0.passes {
            if let Some(dump) = &pass.dump {
                write!(f, "# after {}\n{dump}", pass.name)?;
            }
        }
        Ok(())
    }
}

/// The timing table; see [`PassReport::times`].
pub struct Times<'a>(&'a PassReport);

impl fmt::Display for Times<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let passes = &self.0.passes;
        let width = passes.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let width = width.max("total".len());
        writeln!(f, "{:>10}  {:<width$}  changes", "time (ms)", "pass")?;
        for pass in passes {
            writeln!(
                f,
                "{:>10}  {:<width$}  {}",
                milliseconds(pass.elapsed),
                pass.name,
                pass.stats
            )?;
        }
        let total = passes.iter().map(|p| p.elapsed).sum::<Option<Duration>>();
        writeln!(f, "{:>10}  total", milliseconds(total))
    }
}

fn milliseconds(elapsed: Option<Duration>) -> String {
    match elapsed {
        Some(elapsed) => format!("{:.3}", elapsed.as_secs_f64() * 1e3),
        None => "-".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(elapsed: Option<Duration>) -> PassReport {
        let record = |name, removed, dump: &str| PassRecord {
            name,
            stats: Stats {
                removed,
                rewired: 0,
            },
            elapsed,
            dump: elapsed.map(|_| dump.to_string()),
        };
        PassReport {
            passes: vec![
                record("eliminate_dropout", 2, "graph a {\n}\n"),
                record("dce", 1, "graph b {\n}\n"),
            ],
        }
    }

    #[test]
    fn views_print_lines_dumps_and_a_table() {
        let report = report(Some(Duration::from_micros(1500)));
        assert_eq!(
            report.to_string(),
            "eliminate_dropout: removed 2, rewired 0\ndce: removed 1, rewired 0\n"
        );
        assert_eq!(
            report.dumps().to_string(),
            "# after eliminate_dropout\ngraph a {\n}\n# after dce\ngraph b {\n}\n"
        );
        assert_eq!(
            report.times().to_string(),
            " time (ms)  pass               changes\n\
             \x20    1.500  eliminate_dropout  removed 2, rewired 0\n\
             \x20    1.500  dce                removed 1, rewired 0\n\
             \x20    3.000  total\n"
        );
    }

    #[test]
    fn unrecorded_views_are_empty_or_dashes() {
        let report = report(None);
        assert_eq!(report.dumps().to_string(), "");
        assert!(report.times().to_string().ends_with("         -  total\n"));
    }
}
