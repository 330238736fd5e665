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
    /// Every round's, lowest first.
    pub rounds_ops_per_sec: Vec<f64>,
    pub errors: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    /// User and system CPU of the clients and the server (if any) per operation.
    pub cpu_us_per_op: f64,
    /// Latencies of each kind of access (depth 1 only).
    pub by_kind: BTreeMap<String, Quantiles>,
}

#[derive(Debug, Serialize)]
pub struct Quantiles {
    pub ops: u64,
    pub p50_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

impl Quantiles {
    fn of(histogram: &Histogram) -> Quantiles {
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
        let ops_per_sec = total.ops as f64 / total.elapsed_secs.max(1e-9);
        Cell {
            contender: contender.name(),
            workload,
            beside: None,
            clients,
            depth,
            ops_per_sec,
            rounds_ops_per_sec: vec![ops_per_sec],
            errors: total.errors,
            p50_us: all.p50_us,
            p99_us: all.p99_us,
            p999_us: all.p999_us,
            cpu_us_per_op: cpu_secs * 1e6 / total.ops.max(1) as f64,
            by_kind: total.by_kind.iter().map(|(kind, h)| (kind.clone(), Quantiles::of(h))).collect(),
        }
    }
}

impl Cell {
    /// The round of median throughput (the lower of the two middle ones for an even count),
    /// with every round's throughput; an echo's cell notes the workload it ran `beside`.
    pub fn median(mut rounds: Vec<Cell>, beside: &str) -> Cell {
        assert!(!rounds.is_empty(), "a cell runs at least one round");
        rounds.sort_by(|a, b| a.ops_per_sec.total_cmp(&b.ops_per_sec));
        let all: Vec<f64> = rounds.iter().map(|round| round.ops_per_sec).collect();
        let mut median = rounds.swap_remove((all.len() - 1) / 2);
        median.rounds_ops_per_sec = all;
        if median.workload == "echo" {
            median.beside = Some(beside.to_owned());
        }
        median
    }

    /// The rounds' spread, highest less lowest, as a share of the median.
    fn spread(&self) -> f64 {
        let (lowest, highest) = (self.rounds_ops_per_sec.first(), self.rounds_ops_per_sec.last());
        lowest.zip(highest).map_or(0.0, |(lowest, highest)| (highest - lowest) / self.ops_per_sec.max(1e-9))
    }

    /// The workload column: an echo's says what it ran beside.
    fn workload_shown(&self) -> String {
        match &self.beside {
            Some(beside) => format!("{} (beside {beside})", self.workload),
            None => self.workload.clone(),
        }
    }
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

    /// `contender`'s cell of `workload`, clients and depth; for the echo, the cell that ran
    /// beside `workload`.
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
        let ways = [Contender::Hintsd.name(), Contender::HintsdRing.name()];
        for ours in ways {
            self.print_ratios_of(ours);
        }
        targets::print(self, &ways);
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
            "{hintsd} against each contender in the same cell: `{hintsd} ops/s ÷ theirs` · `their p99 ÷ {hintsd}'s` (above 1: {hintsd} ahead)."
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
                        format!(
                            "{:.2}× · {:.2}×",
                            ours.ops_per_sec / theirs.ops_per_sec.max(1e-9),
                            theirs.p99_us / ours.p99_us.max(1e-9)
                        )
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

    /// A cell of one round, its p50 half its p99.
    pub(crate) fn cell(
        contender: Contender,
        workload: &str,
        clients: u32,
        depth: usize,
        ops_per_sec: f64,
        p99_us: f64,
    ) -> Cell {
        Cell {
            contender: contender.name(),
            workload: workload.to_owned(),
            beside: None,
            clients,
            depth,
            ops_per_sec,
            rounds_ops_per_sec: vec![ops_per_sec],
            errors: 0,
            p50_us: p99_us / 2.0,
            p99_us,
            p999_us: p99_us,
            cpu_us_per_op: 10.0,
            by_kind: BTreeMap::new(),
        }
    }

    #[test]
    fn a_cell_is_its_median_round_whole_with_every_round_s_throughput() {
        let rounds = vec![
            cell(Contender::Hintsd, "seen", 4, 1, 300.0, 1.0),
            cell(Contender::Hintsd, "seen", 4, 1, 100.0, 3.0),
            cell(Contender::Hintsd, "seen", 4, 1, 200.0, 2.0),
        ];
        let median = Cell::median(rounds, "seen");
        assert_eq!((median.ops_per_sec, median.p99_us), (200.0, 2.0), "the median round's figures, together");
        assert_eq!(median.rounds_ops_per_sec, [100.0, 200.0, 300.0]);
        assert_eq!(median.spread(), 1.0);
        assert_eq!(median.beside, None);
        let two = vec![cell(Contender::Echo, "echo", 1, 1, 20.0, 1.0), cell(Contender::Echo, "echo", 1, 1, 10.0, 1.0)];
        let echo = Cell::median(two, "ratelimit");
        assert_eq!(echo.ops_per_sec, 10.0, "the lower of two");
        assert_eq!(echo.beside.as_deref(), Some("ratelimit"));
        assert_eq!(echo.workload_shown(), "echo (beside ratelimit)");
    }
}
