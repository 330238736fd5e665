//! The targets hintsd is held to (the benchmark issue's), each a ratio of two cells of one run
//! or a bound on one cell, worked out from the report and printed met or short.

use crate::report::{Cell, Report};

/// A figure of a cell.
#[derive(Clone, Copy)]
enum Figure {
    OpsPerSec,
    P50,
    P99,
    CpuPerOp,
}

impl Figure {
    fn of(self, cell: &Cell) -> f64 {
        match self {
            Figure::OpsPerSec => cell.ops_per_sec,
            Figure::P50 => cell.p50_us,
            Figure::P99 => cell.p99_us,
            Figure::CpuPerOp => cell.cpu_us_per_op,
        }
    }
}

/// What hintsd's figure is divided by.
#[derive(Clone, Copy)]
enum Against {
    /// The same figure of another contender's cell of this workload, clients and depth (the
    /// echo's that ran beside it).
    Contender(&'static str),
    /// The same figure of hintsd's own cell of another workload.
    OwnWorkload(&'static str),
    /// Nothing: the figure itself is bounded.
    Absolute,
}

struct Target {
    what: &'static str,
    workload: &'static str,
    clients: u32,
    depth: usize,
    figure: Figure,
    against: Against,
    /// The ratio must be at least `bound` (throughput), or at most (latency, CPU).
    at_least: bool,
    bound: f64,
}

const fn target(what: &'static str, workload: &'static str, clients: u32, figure: Figure, against: Against) -> Target {
    Target { what, workload, clients, depth: 1, figure, against, at_least: true, bound: 0.0 }
}

impl Target {
    const fn at_least(self, bound: f64) -> Target {
        Target { at_least: true, bound, ..self }
    }

    const fn at_most(self, bound: f64) -> Target {
        Target { at_least: false, bound, ..self }
    }

    const fn depth(self, depth: usize) -> Target {
        Target { depth, ..self }
    }

    /// hintsd's ratio, if the run has both cells.
    fn ratio(&self, report: &Report, hintsd: &str) -> Option<f64> {
        let ours = self.figure.of(report.cell(hintsd, self.workload, self.clients, self.depth)?);
        let theirs = match self.against {
            Against::Contender(other) => self.figure.of(report.cell(other, self.workload, self.clients, self.depth)?),
            Against::OwnWorkload(workload) => {
                self.figure.of(report.cell(hintsd, workload, self.clients, self.depth)?)
            }
            Against::Absolute => 1.0,
        };
        Some(ours / theirs.max(1e-9))
    }

    fn met(&self, ratio: f64) -> bool {
        if self.at_least { ratio >= self.bound } else { ratio <= self.bound }
    }

    fn bound_shown(&self) -> String {
        let unit = if matches!(self.against, Against::Absolute) { " µs" } else { "×" };
        format!("{} {}{unit}", if self.at_least { "≥" } else { "≤" }, self.bound)
    }
}

use Against::{Absolute, Contender, OwnWorkload};
use Figure::{CpuPerOp, OpsPerSec, P50, P99};

/// The targets, at 4 client processes unless stated; mix is the uniform one.
const TARGETS: [Target; 11] = [
    target("mix ops/s ÷ Exim GDBM on tmpfs", "mix/uniform", 4, OpsPerSec, Contender("exim-gdbm-tmpfs")).at_least(5.0),
    target("mix ops/s ÷ Exim GDBM on disk", "mix/uniform", 4, OpsPerSec, Contender("exim-gdbm-disk")).at_least(15.0),
    target("mix ops/s ÷ Redis", "mix/uniform", 4, OpsPerSec, Contender("redis")).at_least(1.2),
    target("ratelimit ops/s ÷ Exim GDBM on tmpfs", "ratelimit", 4, OpsPerSec, Contender("exim-gdbm-tmpfs"))
        .at_least(4.0),
    target("ratelimit ops/s ÷ hintsd's own mix", "ratelimit", 4, OpsPerSec, OwnWorkload("mix/uniform")).at_least(0.9),
    target("mix p99 ÷ Exim GDBM on tmpfs's", "mix/uniform", 4, P99, Contender("exim-gdbm-tmpfs")).at_most(0.05),
    target("mix p99 ÷ the echo's", "mix/uniform", 4, P99, Contender("echo")).at_most(2.5),
    target("mix CPU (clients and server) a request", "mix/uniform", 4, CpuPerOp, Absolute).at_most(25.0),
    target("mix p50 ÷ the echo's, 2 clients", "mix/uniform", 2, P50, Contender("echo")).at_most(1.5),
    target("mix p50 ÷ the echo's, 1 client", "mix/uniform", 1, P50, Contender("echo")).at_most(1.15),
    target("mix ops/s ÷ the echo's, 16 deep", "mix/uniform", 4, OpsPerSec, Contender("echo")).depth(16).at_least(0.5),
];

/// One table: a row a target the run has the cells for, a column for each way to hintsd.
pub fn print(report: &Report, ways: &[&str]) {
    let ways: Vec<&str> =
        ways.iter().copied().filter(|way| TARGETS.iter().any(|t| t.ratio(report, way).is_some())).collect();
    if ways.is_empty() {
        return;
    }
    println!();
    println!("Targets, as ratios within this run:");
    println!();
    println!("| target | bound | {} |", ways.join(" | "));
    println!("|---|---|{}", "---|".repeat(ways.len()));
    for target in &TARGETS {
        let shown: Vec<String> = ways
            .iter()
            .map(|way| {
                target.ratio(report, way).map_or_else(String::new, |ratio| {
                    let shown = if ratio < 0.1 { format!("{ratio:.3}") } else { format!("{ratio:.2}") };
                    format!("{shown} {}", if target.met(ratio) { "met" } else { "**short**" })
                })
            })
            .collect();
        if shown.iter().any(|s| !s.is_empty()) {
            println!("| {} | {} | {} |", target.what, target.bound_shown(), shown.join(" | "));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contenders::Contender as Named;
    use crate::report::tests::cell;

    fn target(what: &str) -> &'static Target {
        TARGETS.iter().find(|t| t.what == what).expect("a target of that name")
    }

    #[test]
    fn ratios_are_taken_between_cells_of_the_same_run_and_judged_each_way() {
        let mut report = Report::new(String::new(), &[]);
        report.cells.push(cell(Named::Hintsd, "mix/uniform", 4, 1, 200_000.0, 50.0));
        report.cells.push(cell(Named::Hintsd, "ratelimit", 4, 1, 170_000.0, 50.0));
        report.cells.push(cell(Named::EximGdbmTmpfs, "mix/uniform", 4, 1, 50_000.0, 2_000.0));
        report.cells.push(Cell::median(vec![cell(Named::Echo, "echo", 4, 1, 300_000.0, 10.0)], "mix/uniform"));

        let tmpfs = target("mix ops/s ÷ Exim GDBM on tmpfs");
        assert_eq!(tmpfs.ratio(&report, "hintsd"), Some(4.0));
        assert!(!tmpfs.met(4.0), "4x is short of at least 5x");
        let own = target("ratelimit ops/s ÷ hintsd's own mix");
        assert!(!own.met(own.ratio(&report, "hintsd").unwrap()), "170 000 / 200 000 is short of 0.9");
        assert!(own.met(0.9));
        let p99 = target("mix p99 ÷ the echo's");
        assert_eq!(p99.ratio(&report, "hintsd"), Some(5.0), "the echo's cell beside mix is found");
        assert!(!p99.met(5.0), "at most 2.5x");
        assert_eq!(target("mix ops/s ÷ Redis").ratio(&report, "hintsd"), None, "no Redis cell, no ratio");
        assert_eq!(tmpfs.ratio(&report, "hintsd-ring"), None);
    }
}
