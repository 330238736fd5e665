//! The results: one [`Cell`] per (contender, workload, clients, depth), the median of its
//! rounds, printed as a markdown table, then hintsd's ratios against every other contender in
//! the same cell, then what each contender is. Also written as JSON with the command that
//! produced it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::WorkerResult;
use crate::contenders::Contender;
use crate::histogram::Histogram;
use crate::targets;

#[derive(Debug, Serialize)]
pub struct Cell {
    pub contender: &'static str,
    /// `mix/uniform`, `mix/zipf`, `ratelimit`, `seen`, or `echo`.
    pub workload: String,
    /// The echo's cells only: the workload the echo ran beside, turn by turn.
    pub beside: Option<String>,
    pub clients: u32,
    /// Accesses per pipelined batch; latencies are per batch.
    pub depth: usize,
    /// The median round's: the other figures are that round's too.
    pub ops_per_sec: f64,
    /// Every round's figures, in the order they were measured: round `i` of one contender ran
    /// within seconds of round `i` of every other in the cell.
    pub rounds: Vec<Round>,
    /// Failed accesses, over all rounds.
    pub errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// User and system CPU of the clients and the server (if any) per operation.
    pub cpu_us_per_op: f64,
    /// Latencies of each kind of access (depth 1 only).
    pub by_kind: BTreeMap<String, Quantiles>,
}

/// One round's figures of a cell.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Round {
    pub ops_per_sec: f64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub cpu_us_per_op: f64,
    pub errors: u64,
}

#[derive(Debug, Serialize)]
pub struct Quantiles {
    pub ops: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

impl Quantiles {
    pub fn of(histogram: &Histogram) -> Quantiles {
        let us = |q| histogram.quantile_nanos(q) as f64 / 1000.0;
        Quantiles { ops: histogram.count(), p50_us: us(0.5), p99_us: us(0.99), p999_us: us(0.999) }
    }
}

impl Cell {
    pub fn new(
        contender: Contender,
        workload: String,
        clients: u32,
        depth: usize,
        total: &WorkerResult,
        cpu_secs: f64,
    ) -> Cell {
        let all = Quantiles::of(&total.histogram);
        let round = Round {
            ops_per_sec: total.ops_per_sec(),
            p50_us: all.p50_us,
            p99_us: all.p99_us,
            cpu_us_per_op: cpu_secs * 1e6 / total.ops.max(1) as f64,
            errors: total.errors,
        };
        Cell {
            contender: contender.name(),
            workload,
            beside: None,
            clients,
            depth,
            ops_per_sec: round.ops_per_sec,
            rounds: vec![round],
            errors: round.errors,
            p50_us: round.p50_us,
            p99_us: round.p99_us,
            p999_us: all.p999_us,
            cpu_us_per_op: round.cpu_us_per_op,
            by_kind: total.by_kind.iter().map(|(kind, h)| (kind.clone(), Quantiles::of(h))).collect(),
        }
    }

    /// One cell of its rounds of one round each, in the order they ran: the round of median
    /// throughput (the lower of the two middle ones for an even count), with every round's
    /// figures.
    pub fn median(rounds: Vec<Cell>) -> Cell {
        assert!(!rounds.is_empty(), "a cell runs at least one round");
        let all: Vec<Round> = rounds.iter().flat_map(|cell| cell.rounds.iter().copied()).collect();
        let mut by_throughput = rounds;
        by_throughput.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        let mut median = by_throughput.swap_remove((by_throughput.len() - 1) / 2);
        // Errors of any round show: a round whose accesses failed fast is rarely the median.
        median.errors = all.iter().map(|round| round.errors).sum();
        median.rounds = all;
        median
    }

    fn had_errors(&self) -> bool {
        self.errors > 0
    }

    /// The figures shown: the median round's.
    fn shown_round(&self) -> Round {
        let Cell { ops_per_sec, p50_us, p99_us, cpu_us_per_op, errors, .. } = *self;
        Round { ops_per_sec, p50_us, p99_us, cpu_us_per_op, errors }
    }

    /// The rounds' spread, highest less lowest throughput, as a share of the median's.
    fn spread(&self) -> f64 {
        let throughputs = self.rounds.iter().map(|round| round.ops_per_sec);
        let highest = throughputs.clone().fold(f64::MIN, f64::max);
        let lowest = throughputs.fold(f64::MAX, f64::min);
        (highest - lowest) / self.ops_per_sec.max(1e-9)
    }

    /// The workload column: an echo's says what it ran beside.
    fn workload_shown(&self) -> String {
        match &self.beside {
            Some(beside) => format!("{} (beside {beside})", self.workload),
            None => self.workload.clone(),
        }
    }
}

/// `ours` over `theirs` in `figure`: the median over rounds of the ratio within each round,
/// since round `i` of a cell ran within seconds of round `i` of every other cell of the same
/// workload, clients and depth (the ratio of the median rounds if their rounds do not pair
/// up). Cells of different workloads ran minutes apart: compare their [`median_figure`]s.
/// `None` when either cell had errors, whose failed accesses count as done.
pub fn paired_ratio(ours: &Cell, theirs: &Cell, figure: impl Fn(&Round) -> f64) -> Option<f64> {
    if ours.had_errors() || theirs.had_errors() {
        return None;
    }
    let ratio = |ours: &Round, theirs: &Round| figure(ours) / figure(theirs).max(1e-9);
    if ours.rounds.len() != theirs.rounds.len() || ours.rounds.is_empty() {
        return Some(ratio(&ours.shown_round(), &theirs.shown_round()));
    }
    Some(median(ours.rounds.iter().zip(&theirs.rounds).map(|(ours, theirs)| ratio(ours, theirs))))
}

/// The median over `cell`'s rounds of `figure`; `None` when the cell had errors.
pub fn median_figure(cell: &Cell, figure: impl Fn(&Round) -> f64) -> Option<f64> {
    (!cell.had_errors()).then(|| median(cell.rounds.iter().map(figure)))
}

/// The median of some values, the lower middle one of an even count; 0 of none.
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    values.get(values.len().saturating_sub(1) / 2).copied().unwrap_or(0.0)
}

#[derive(Debug, Serialize)]
pub struct Skipped {
    pub contender: &'static str,
    pub reason: String,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub command: String,
    pub cells: Vec<Cell>,
    pub skipped: Vec<Skipped>,
    /// The contenders asked for, in order.
    #[serde(skip)]
    contenders: Vec<Contender>,
}

impl Report {
    pub fn new(command: String, contenders: &[Contender]) -> Report {
        Report { command, cells: Vec::new(), skipped: Vec::new(), contenders: contenders.to_vec() }
    }

    pub fn skip(&mut self, contender: Contender, reason: String) {
        self.skipped.push(Skipped { contender: contender.name(), reason });
    }

    pub fn print(&self, header: &str) {
        println!("{header}");
        println!();
        println!(
            "| contender | workload | clients | depth | ops/s | spread | p50 µs | p99 µs | p99.9 µs | p99 µs by access | CPU µs/op | errors |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|");
        // Measured cell by cell, shown contender by contender.
        let mut cells: Vec<&Cell> = self.cells.iter().collect();
        cells.sort_by_key(|cell| self.contenders.iter().position(|c| c.name() == cell.contender));
        for cell in cells {
            let by_kind: Vec<String> = cell.by_kind.iter().map(|(kind, q)| format!("{kind} {:.0}", q.p99_us)).collect();
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.0} % | {:.1} | {:.1} | {:.1} | {} | {:.1} | {} |",
                cell.contender,
                cell.workload_shown(),
                cell.clients,
                cell.depth,
                cell.ops_per_sec,
                cell.spread() * 100.0,
                cell.p50_us,
                cell.p99_us,
                cell.p999_us,
                by_kind.join(", "),
                cell.cpu_us_per_op,
                cell.errors
            );
        }
        for skipped in &self.skipped {
            println!("| {} | skipped: {} | | | | | | | | | | |", skipped.contender, skipped.reason);
        }
        self.print_ratios();
        println!();
        println!("Contenders:");
        for contender in &self.contenders {
            println!("- {}: {}", contender.name(), contender.describe());
        }
    }

    /// Whether the run was asked to measure `contender`.
    pub fn asked_for(&self, contender: Contender) -> bool {
        self.contenders.contains(&contender)
    }

    /// `contender`'s cell of `workload`, clients and depth; for the echo, the cell that ran
    /// beside `workload`. Both [`Report::print`]'s ratios and the targets take their cells here.
    pub fn cell(&self, contender: &str, workload: &str, clients: u32, depth: usize) -> Option<&Cell> {
        self.cells.iter().find(|c| {
            c.contender == contender
                && (c.workload == workload || c.beside.as_deref() == Some(workload))
                && c.clients == clients
                && c.depth == depth
        })
    }

    /// One table for each way of reaching hintsd measured (socket, ring), then the targets.
    fn print_ratios(&self) {
        let ways = [Contender::Hintsd, Contender::HintsdRing];
        for ours in ways {
            self.print_ratios_of(ours.name());
        }
        print!("{}", targets::table(self, &ways));
    }

    /// For each cell of `hintsd` (a hintsd contender), against each other contender's cell of
    /// the same workload, clients and depth (the echo's cell that ran beside that workload):
    /// hintsd's ops/s over theirs, and their p99 over hintsd's. Above 1, hintsd is ahead.
    fn print_ratios_of(&self, hintsd: &str) {
        let others: BTreeSet<&str> = self.cells.iter().map(|c| c.contender).filter(|&c| c != hintsd).collect();
        let others: Vec<&str> = self.contenders.iter().map(|c| c.name()).filter(|name| others.contains(name)).collect();
        if others.is_empty() || !self.cells.iter().any(|c| c.contender == hintsd) {
            return;
        }
        println!();
        println!(
            "{hintsd} against each contender in the same cell: `{hintsd} ops/s ÷ theirs` · `their p99 ÷ {hintsd}'s` (above 1: {hintsd} ahead), each the median of the rounds' own ratios."
        );
        println!();
        println!("| workload | clients | depth | {} |", others.join(" | "));
        println!("|---|---:|---:|{}", "---|".repeat(others.len()));
        for ours in self.cells.iter().filter(|c| c.contender == hintsd) {
            let ratios: Vec<String> = others
                .iter()
                .map(|&other| {
                    let theirs = self.cell(other, &ours.workload, ours.clients, ours.depth);
                    theirs.map_or_else(String::new, |theirs| {
                        let throughput = paired_ratio(ours, theirs, |round| round.ops_per_sec);
                        let p99 = paired_ratio(theirs, ours, |round| round.p99_us);
                        match throughput.zip(p99) {
                            Some((throughput, p99)) => format!("{throughput:.2}× · {p99:.2}×"),
                            None => "errors".to_owned(),
                        }
                    })
                })
                .collect();
            println!("| {} | {} | {} | {} |", ours.workload, ours.clients, ours.depth, ratios.join(" | "));
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A cell of one round per `(ops/s, p99 µs)`, in that order; each p50 half its p99.
    pub(crate) fn cell(
        contender: Contender,
        workload: &str,
        clients: u32,
        depth: usize,
        rounds: &[(f64, f64)],
    ) -> Cell {
        let one = |&(ops_per_sec, p99_us): &(f64, f64)| {
            let round = Round { ops_per_sec, p50_us: p99_us / 2.0, p99_us, cpu_us_per_op: 10.0, errors: 0 };
            Cell {
                contender: contender.name(),
                workload: workload.to_owned(),
                beside: None,
                clients,
                depth,
                ops_per_sec,
                rounds: vec![round],
                errors: 0,
                p50_us: round.p50_us,
                p99_us,
                p999_us: p99_us,
                cpu_us_per_op: round.cpu_us_per_op,
                by_kind: BTreeMap::new(),
            }
        };
        Cell::median(rounds.iter().map(one).collect())
    }

    #[test]
    fn a_cell_is_its_median_round_whole_with_every_round_in_the_order_it_ran() {
        let median = cell(Contender::Hintsd, "seen", 4, 1, &[(300.0, 1.0), (100.0, 3.0), (200.0, 2.0)]);
        assert_eq!((median.ops_per_sec, median.p99_us), (200.0, 2.0), "the median round's figures, together");
        let order: Vec<f64> = median.rounds.iter().map(|round| round.ops_per_sec).collect();
        assert_eq!(order, [300.0, 100.0, 200.0]);
        assert_eq!(median.spread(), 1.0);
        let two = cell(Contender::Echo, "echo", 1, 1, &[(20.0, 1.0), (10.0, 1.0)]);
        assert_eq!(two.ops_per_sec, 10.0, "the lower of two");
        let mut failed_fast = cell(Contender::Redis, "seen", 4, 1, &[(900.0, 1.0)]);
        failed_fast.rounds[0].errors = 5;
        failed_fast.errors = 5;
        let with_errors = Cell::median(vec![cell(Contender::Redis, "seen", 4, 1, &[(100.0, 1.0)]), failed_fast]);
        assert_eq!(
            (with_errors.ops_per_sec, with_errors.errors),
            (100.0, 5),
            "a clean median round still shows the errors"
        );
    }

    #[test]
    fn a_ratio_is_the_median_of_the_rounds_own_ratios_and_none_after_errors() {
        let ours = cell(Contender::Hintsd, "mix/uniform", 4, 1, &[(100.0, 10.0), (200.0, 10.0), (300.0, 10.0)]);
        let theirs = cell(Contender::Redis, "mix/uniform", 4, 1, &[(50.0, 10.0), (400.0, 10.0), (150.0, 10.0)]);
        // Round by round 2, 0.5 and 2; the medians alone would give 200 / 150.
        assert_eq!(paired_ratio(&ours, &theirs, |round| round.ops_per_sec), Some(2.0));
        let unpaired = cell(Contender::Redis, "mix/uniform", 4, 1, &[(400.0, 10.0)]);
        assert_eq!(paired_ratio(&ours, &unpaired, |round| round.ops_per_sec), Some(0.5), "medians when rounds differ");
        let mut failing = cell(Contender::Redis, "mix/uniform", 4, 1, &[(50.0, 10.0), (400.0, 10.0), (150.0, 10.0)]);
        failing.errors = 1;
        assert_eq!(paired_ratio(&ours, &failing, |round| round.ops_per_sec), None);
        assert_eq!(median_figure(&failing, |round| round.p99_us), None);
        assert_eq!(median_figure(&ours, |round| round.ops_per_sec), Some(200.0));
    }

    #[test]
    fn an_echo_cell_shows_and_is_found_by_the_workload_it_ran_beside() {
        let mut report = Report::new(String::new(), &[]);
        for (beside, depth, ops) in [("ratelimit", 1, 1.0), ("mix/uniform", 16, 2.0), ("mix/uniform", 1, 3.0)] {
            let mut echo = cell(Contender::Echo, "echo", 4, depth, &[(ops, 1.0)]);
            echo.beside = Some(beside.to_owned());
            report.cells.push(echo);
        }
        let found = report.cell("echo", "mix/uniform", 4, 1).expect("the echo beside mix, one deep");
        assert_eq!(found.ops_per_sec, 3.0);
        assert_eq!(found.workload_shown(), "echo (beside mix/uniform)");
        assert!(report.cell("echo", "seen", 4, 1).is_none());
    }
}
