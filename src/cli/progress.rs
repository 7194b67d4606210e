//! The progress bar of `dropjit train`: what the experiment reports while it works
//! ([`Progress`]), drawn on stderr.

use std::io::{IsTerminal, Write};

use dropjit::train::Metrics;

use super::experiment::{EpochStats, Progress};

/// Training progress on stderr: on a terminal, one bar per run redrawn with `\r` as steps
/// finish (and ended with its last epoch's figures); otherwise (a pipe, a log file) one plain
/// line per epoch.
pub struct Bar {
    terminal: bool,
    /// Several seeds run one after another: name the seed in every line.
    seed: Option<u64>,
    /// A bar is on screen without its newline yet.
    drawn: bool,
    /// The thousandths of the run last drawn.
    drawn_permille: usize,
    run: usize,
    runs: usize,
    p: f64,
    /// The last step: (steps done, steps in the run, its loss).
    step: (usize, usize, f32),
    last_epoch: Option<EpochStats>,
}

impl Bar {
    /// A bar for stderr; `show_seed` names the seed in every line (several seeds run).
    pub fn new(show_seed: bool) -> Bar {
        Bar {
            terminal: std::io::stderr().is_terminal(),
            seed: show_seed.then_some(0),
            drawn: false,
            drawn_permille: usize::MAX,
            run: 0,
            runs: 0,
            p: 0.0,
            step: (0, 0, 0.0),
            last_epoch: None,
        }
    }

    /// Takes one event of the run for `seed`.
    pub fn update(&mut self, seed: u64, event: Progress) {
        self.seed = self.seed.map(|_| seed);
        match event {
            Progress::Run {
                run,
                runs,
                p,
                steps,
            } => {
                self.finish();
                (self.run, self.runs, self.p) = (run, runs, p);
                (self.step, self.last_epoch) = ((0, steps, 0.0), None);
                self.drawn_permille = usize::MAX;
            }
            Progress::Step {
                step, steps, loss, ..
            } => {
                self.step = (step, steps, loss);
                if self.terminal && self.permille() != self.drawn_permille {
                    self.draw();
                }
            }
            Progress::Epoch { stats, .. } => {
                self.last_epoch = Some(stats);
                if self.terminal {
                    self.draw();
                    if self.step.0 == self.step.1 {
                        self.finish();
                    }
                } else {
                    // Progress is a courtesy: a closed stderr must not stop the training.
                    let _ = writeln!(
                        std::io::stderr(),
                        "{}p={} epoch {}: train loss {:.4} acc {:.1}%, test loss {:.4} acc {:.1}%",
                        self.seed_label(),
                        self.p,
                        stats.epoch,
                        stats.train.loss,
                        100.0 * stats.train.accuracy,
                        stats.test.loss,
                        100.0 * stats.test.accuracy
                    );
                }
            }
        }
    }

    fn permille(&self) -> usize {
        self.step.0 * 1000 / self.step.1.max(1)
    }

    fn seed_label(&self) -> String {
        self.seed.map_or(String::new(), |s| format!("seed {s} "))
    }

    fn draw(&mut self) {
        let permille = self.permille();
        self.drawn_permille = permille;
        let filled = permille * 30 / 1000;
        let epoch = self.last_epoch.map_or(String::new(), |e| {
            let acc = |m: Metrics| 100.0 * m.accuracy;
            let (train, test) = (acc(e.train), acc(e.test));
            format!(
                "  epoch {}: train acc {train:.1}% test acc {test:.1}%",
                e.epoch
            )
        });
        let mut err = std::io::stderr().lock();
        let _ = write!(
            err,
            "\r{}run {}/{} p={:<4} [{}{}] {:>3}%  loss {:.4}{epoch}\x1b[K",
            self.seed_label(),
            self.run + 1,
            self.runs,
            self.p,
            "#".repeat(filled),
            "-".repeat(30 - filled),
            permille / 10,
            self.step.2
        );
        let _ = err.flush();
        self.drawn = true;
    }

    /// Ends the bar on screen with its newline.
    pub fn finish(&mut self) {
        if self.drawn {
            let _ = writeln!(std::io::stderr());
            self.drawn = false;
        }
    }
}
