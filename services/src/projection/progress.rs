//! A replay's progress for the person running it: an indicatif bar (events, events/s, time
//! left) on a terminal; elsewhere (CI logs, pipes) a plain line every few seconds.

use super::replay::ReplayProgress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub enum ConsoleProgress {
    Bar(ProgressBar),
    Lines(Mutex<Lines>),
}

pub struct Lines {
    total: u64,
    done: u64,
    /// Events done when this run began (a resumed replay), kept out of the rate.
    resumed_from: u64,
    began: Instant,
    last_line: Instant,
}

const LINE_EVERY: Duration = Duration::from_secs(2);

impl ConsoleProgress {
    pub fn for_stderr() -> Self {
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(0);
            bar.set_style(
                ProgressStyle::with_template(
                    "{spinner} replay [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} events  {per_sec}  ETA {eta}",
                )
                .expect("a valid template"),
            );
            bar.enable_steady_tick(Duration::from_millis(200));
            Self::Bar(bar)
        } else {
            let now = Instant::now();
            Self::Lines(Mutex::new(Lines { total: 0, done: 0, resumed_from: 0, began: now, last_line: now }))
        }
    }
}

impl Lines {
    fn line(&self) -> String {
        let elapsed = self.began.elapsed().as_secs_f64();
        let rate = (self.done - self.resumed_from) as f64 / elapsed.max(1e-3);
        let left = match self.done > self.resumed_from {
            true => format!("about {:.0} s left", self.total.saturating_sub(self.done) as f64 / rate),
            false => "time left unknown yet".to_owned(),
        };
        format!(
            "replay: {}/{} events ({:.0}%), {:.0} events/s, {:.1} s elapsed, {left}",
            self.done,
            self.total,
            100.0 * self.done as f64 / self.total.max(1) as f64,
            rate,
            elapsed,
        )
    }
}

impl ReplayProgress for ConsoleProgress {
    fn begin(&self, total: u64, done: u64) {
        match self {
            Self::Bar(bar) => {
                bar.set_length(total);
                bar.set_position(done);
                bar.reset_eta();
            }
            Self::Lines(lines) => {
                let mut l = lines.lock().expect("not poisoned");
                (l.total, l.done, l.resumed_from) = (total, done, done);
                eprintln!("{}", l.line());
            }
        }
    }

    fn advance(&self, events: u64) {
        match self {
            Self::Bar(bar) => bar.inc(events),
            Self::Lines(lines) => {
                let mut l = lines.lock().expect("not poisoned");
                l.done += events;
                l.total = l.total.max(l.done);
                if l.last_line.elapsed() >= LINE_EVERY {
                    l.last_line = Instant::now();
                    eprintln!("{}", l.line());
                }
            }
        }
    }

    fn grow(&self, total: u64) {
        match self {
            Self::Bar(bar) => bar.set_length(total.max(bar.position())),
            Self::Lines(lines) => {
                let mut l = lines.lock().expect("not poisoned");
                l.total = total.max(l.done);
            }
        }
    }

    fn finish(&self, message: &str) {
        match self {
            Self::Bar(bar) => bar.finish_with_message(message.to_owned()),
            Self::Lines(lines) => {
                let l = lines.lock().expect("not poisoned");
                eprintln!("{}", l.line());
            }
        }
        eprintln!("replay: {message}");
    }
}
