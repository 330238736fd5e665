//! The targets hintsd is held to (the benchmark issue's), each a ratio of two cells of one run
//! or a bound on one cell, worked out from the report and shown met, short, not measured, or
//! not judged because a cell had errors.

use std::fmt::Write;

use crate::contenders::Contender;
use crate::report::{Report, Round, median_figure, paired_ratio};

/// A figure of a round.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Figure {
    OpsPerSec,
    P50,
    P99,
    CpuPerOp,
}

impl Figure {
    fn of(self, round: &Round) -> f64 {
        match self {
            Figure::OpsPerSec => round.ops_per_sec,
            Figure::P50 => round.p50_us,
            Figure::P99 => round.p99_us,
            Figure::CpuPerOp => round.cpu_us_per_op,
        }
    }
}

/// What hintsd's figure is divided by.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Against {
    /// The same figure of another contender's cell of this workload, clients and depth (the
    /// echo's that ran beside it).
    Other(Contender),
    /// The same figure of hintsd's own cell of another workload.
    OwnWorkload(&'static str),
    /// Nothing: the figure itself is bounded.
    Absolute,
}

/// Which way a target goes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Bound {
    AtLeast(f64),
    AtMost(f64),
}

/// One target: hintsd's `figure` in a cell, over `against`'s, within `bound`.
struct Goal {
    what: &'static str,
    workload: &'static str,
    clients: u32,
    depth: usize,
    figure: Figure,
    against: Against,
    bound: Bound,
}

/// What a run says of a goal.
#[derive(Debug, PartialEq)]
enum Judged {
    Ratio(f64),
    /// A cell it needs is not in the run (its contender skipped, or not asked for).
    NotMeasured,
    /// A cell it needs had errors, whose failed accesses count as done.
    Errors,
}

const fn goal(
    what: &'static str,
    workload: &'static str,
    clients: u32,
    figure: Figure,
    against: Against,
    bound: Bound,
) -> Goal {
    Goal { what, workload, clients, depth: 1, figure, against, bound }
}

impl Goal {
    const fn pipelined(self, depth: usize) -> Goal {
        Goal { depth, ..self }
    }

    /// hintsd's ratio, by way of `hintsd` (the socket or the ring).
    fn judge(&self, report: &Report, hintsd: Contender) -> Judged {
        let cell =
            |contender: Contender, workload: &str| report.cell(contender.name(), workload, self.clients, self.depth);
        let Some(ours) = cell(hintsd, self.workload) else { return Judged::NotMeasured };
        let figure = |round: &Round| self.figure.of(round);
        let ratio = match self.against {
            Against::Absolute => median_figure(ours, figure),
            Against::Other(other) => {
                let Some(theirs) = cell(other, self.workload) else { return Judged::NotMeasured };
                paired_ratio(ours, theirs, figure)
            }
            // Cells of two workloads did not run side by side: their rounds do not pair.
            Against::OwnWorkload(workload) => {
                let Some(theirs) = cell(hintsd, workload) else { return Judged::NotMeasured };
                median_figure(ours, figure).zip(median_figure(theirs, figure)).map(|(o, t)| o / t.max(1e-9))
            }
        };
        ratio.map_or(Judged::Errors, Judged::Ratio)
    }

    fn met(&self, ratio: f64) -> bool {
        match self.bound {
            Bound::AtLeast(bound) => ratio >= bound,
            Bound::AtMost(bound) => ratio <= bound,
        }
    }

    fn bound_shown(&self) -> String {
        let unit = if self.against == Against::Absolute { " µs" } else { "×" };
        match self.bound {
            Bound::AtLeast(bound) => format!("≥ {bound}{unit}"),
            Bound::AtMost(bound) => format!("≤ {bound}{unit}"),
        }
    }

    fn shown(&self, judged: &Judged) -> String {
        match judged {
            Judged::Ratio(ratio) => {
                let value = if *ratio < 0.1 { format!("{ratio:.3}") } else { format!("{ratio:.2}") };
                format!("{value} {}", if self.met(*ratio) { "met" } else { "**short**" })
            }
            Judged::NotMeasured => "not measured".to_owned(),
            Judged::Errors => "errors".to_owned(),
        }
    }
}

use Against::{Absolute, Other, OwnWorkload};
use Bound::{AtLeast, AtMost};
use Contender::{Echo, EximGdbmDisk, EximGdbmTmpfs, Redis};
use Figure::{CpuPerOp, OpsPerSec, P50, P99};

/// The issue's targets, at 4 client processes unless stated. Its mix is judged with uniform
/// keys, and the latency and CPU targets on mix (a read-mostly workload, as most hints are).
const GOALS: [Goal; 11] = [
    goal("mix ops/s ÷ Exim GDBM on tmpfs", "mix/uniform", 4, OpsPerSec, Other(EximGdbmTmpfs), AtLeast(5.0)),
    goal("mix ops/s ÷ Exim GDBM on disk", "mix/uniform", 4, OpsPerSec, Other(EximGdbmDisk), AtLeast(15.0)),
    goal("mix ops/s ÷ Redis", "mix/uniform", 4, OpsPerSec, Other(Redis), AtLeast(1.2)),
    goal("ratelimit ops/s ÷ Exim GDBM on tmpfs", "ratelimit", 4, OpsPerSec, Other(EximGdbmTmpfs), AtLeast(4.0)),
    goal("ratelimit ops/s ÷ hintsd's own mix", "ratelimit", 4, OpsPerSec, OwnWorkload("mix/uniform"), AtLeast(0.9)),
    goal("mix p99 ÷ Exim GDBM on tmpfs's", "mix/uniform", 4, P99, Other(EximGdbmTmpfs), AtMost(0.05)),
    goal("mix p99 ÷ the echo's", "mix/uniform", 4, P99, Other(Echo), AtMost(2.5)),
    goal("mix CPU (clients and server) a request", "mix/uniform", 4, CpuPerOp, Absolute, AtMost(25.0)),
    goal("mix p50 ÷ the echo's, 2 clients", "mix/uniform", 2, P50, Other(Echo), AtMost(1.5)),
    goal("mix p50 ÷ the echo's, 1 client", "mix/uniform", 1, P50, Other(Echo), AtMost(1.15)),
    goal("mix ops/s ÷ the echo's, 16 deep", "mix/uniform", 4, OpsPerSec, Other(Echo), AtLeast(0.5)).pipelined(16),
];

/// The targets as a markdown table, a row a target and a column for each way to hintsd the
/// run was asked to measure; empty when it was asked for none.
pub fn table(report: &Report, ways: &[Contender]) -> String {
    let ways: Vec<Contender> = ways.iter().copied().filter(|way| report.asked_for(*way)).collect();
    let mut table = String::new();
    if ways.is_empty() {
        return table;
    }
    let names: Vec<&str> = ways.iter().map(|way| way.name()).collect();
    let _ = writeln!(
        table,
        "\nTargets, as ratios within this run (each the median of the rounds' own ratios, but against hintsd's own mix the ratio of the median rounds):\n"
    );
    let _ = writeln!(table, "| target | bound | {} |", names.join(" | "));
    let _ = writeln!(table, "|---|---|{}", "---|".repeat(ways.len()));
    for goal in &GOALS {
        let shown: Vec<String> = ways.iter().map(|&way| goal.shown(&goal.judge(report, way))).collect();
        let _ = writeln!(table, "| {} | {} | {} |", goal.what, goal.bound_shown(), shown.join(" | "));
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::cell;

    fn goal(what: &str) -> &'static Goal {
        GOALS.iter().find(|goal| goal.what == what).expect("a target of that name")
    }

    /// hintsd's socket cells at 4 clients, GDBM on tmpfs's, and the echo beside mix.
    fn report() -> Report {
        let mut report = Report::new(String::new(), &[Contender::Hintsd, EximGdbmTmpfs, Echo]);
        report.cells.push(cell(Contender::Hintsd, "mix/uniform", 4, 1, &[(200_000.0, 50.0)]));
        report.cells.push(cell(Contender::Hintsd, "ratelimit", 4, 1, &[(170_000.0, 50.0)]));
        report.cells.push(cell(EximGdbmTmpfs, "mix/uniform", 4, 1, &[(50_000.0, 2_000.0)]));
        let mut echo = cell(Echo, "echo", 4, 1, &[(300_000.0, 10.0)]);
        echo.beside = Some("mix/uniform".to_owned());
        report.cells.push(echo);
        report
    }

    #[test]
    fn ratios_are_taken_between_cells_of_the_same_run_and_judged_each_way() {
        let report = report();
        let tmpfs = goal("mix ops/s ÷ Exim GDBM on tmpfs");
        assert_eq!(tmpfs.judge(&report, Contender::Hintsd), Judged::Ratio(4.0));
        assert_eq!(tmpfs.shown(&Judged::Ratio(4.0)), "4.00 **short**", "at least 5x");
        assert_eq!(tmpfs.shown(&Judged::Ratio(5.0)), "5.00 met");
        let own = goal("ratelimit ops/s ÷ hintsd's own mix");
        assert_eq!(own.judge(&report, Contender::Hintsd), Judged::Ratio(0.85));
        let p99 = goal("mix p99 ÷ the echo's");
        assert_eq!(p99.judge(&report, Contender::Hintsd), Judged::Ratio(5.0), "the echo's cell beside mix");
        assert_eq!(p99.shown(&Judged::Ratio(2.5)), "2.50 met", "at most 2.5x");
        let cpu = goal("mix CPU (clients and server) a request");
        assert_eq!(cpu.judge(&report, Contender::Hintsd), Judged::Ratio(10.0));
        assert_eq!(goal("mix ops/s ÷ Redis").judge(&report, Contender::Hintsd), Judged::NotMeasured);
        assert_eq!(tmpfs.judge(&report, Contender::HintsdRing), Judged::NotMeasured);
    }

    #[test]
    fn every_target_has_a_row_said_not_measured_or_errors_when_it_cannot_be_judged() {
        let mut report = report();
        report.cells[2].errors = 3;
        let table = table(&report, &[Contender::Hintsd, Contender::HintsdRing]);
        assert_eq!(table.lines().filter(|line| line.starts_with("| ")).count(), 1 + GOALS.len(), "{table}");
        assert!(table.contains("| target | bound | hintsd |"), "a column only for a way asked for: {table}");
        assert!(table.contains("| mix ops/s ÷ Exim GDBM on tmpfs | ≥ 5× | errors |"), "{table}");
        assert!(table.contains("| mix ops/s ÷ Redis | ≥ 1.2× | not measured |"), "{table}");
        assert!(table.contains("| mix p99 ÷ the echo's | ≤ 2.5× | 5.00 **short** |"), "{table}");
        assert!(table.contains("| mix CPU (clients and server) a request | ≤ 25 µs | 10.00 met |"), "{table}");
        assert_eq!(
            super::table(&Report::new(String::new(), &[Redis]), &[Contender::Hintsd]),
            "",
            "hintsd not asked for"
        );
        let failed_at_once = Report::new(String::new(), &[Contender::HintsdRing]);
        let table = super::table(&failed_at_once, &[Contender::HintsdRing]);
        assert!(table.contains("| mix ops/s ÷ Redis | ≥ 1.2× | not measured |"), "{table}");
    }

    #[test]
    fn the_targets_are_the_issue_s() {
        // Issue 4's acceptance list: (workload, clients, depth, figure, against, bound).
        let expected = [
            ("mix/uniform", 4, 1, OpsPerSec, Other(EximGdbmTmpfs), AtLeast(5.0)),
            ("mix/uniform", 4, 1, OpsPerSec, Other(EximGdbmDisk), AtLeast(15.0)),
            ("mix/uniform", 4, 1, OpsPerSec, Other(Redis), AtLeast(1.2)),
            ("ratelimit", 4, 1, OpsPerSec, Other(EximGdbmTmpfs), AtLeast(4.0)),
            ("ratelimit", 4, 1, OpsPerSec, OwnWorkload("mix/uniform"), AtLeast(0.9)),
            ("mix/uniform", 4, 1, P99, Other(EximGdbmTmpfs), AtMost(0.05)),
            ("mix/uniform", 4, 1, P99, Other(Echo), AtMost(2.5)),
            ("mix/uniform", 4, 1, CpuPerOp, Absolute, AtMost(25.0)),
            ("mix/uniform", 2, 1, P50, Other(Echo), AtMost(1.5)),
            ("mix/uniform", 1, 1, P50, Other(Echo), AtMost(1.15)),
            ("mix/uniform", 4, 16, OpsPerSec, Other(Echo), AtLeast(0.5)),
        ];
        let goals: Vec<_> =
            GOALS.iter().map(|g| (g.workload, g.clients, g.depth, g.figure, g.against, g.bound)).collect();
        assert_eq!(goals, expected);
    }
}
