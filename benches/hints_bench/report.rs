//! The results: one [`Cell`] per (contender, workload, clients, depth), printed as a markdown
//! table, then hintsd's ratios against every other contender in the same cell, then what
//! each contender is. Also written as JSON with the command that produced it.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::WorkerResult;
use crate::contenders::Contender;
use crate::histogram::Histogram;

#[derive(Debug, Serialize)]
pub struct Cell {
    pub contender: &'static str,
    /// `mix/uniform`, `mix/zipf`, `ratelimit`, `seen`, or `echo`.
    pub workload: String,
    pub clients: u32,
    /// Accesses per pipelined batch; latencies are per batch.
    pub depth: usize,
    pub ops_per_sec: f64,
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
        Cell {
            contender: contender.name(),
            workload,
            clients,
            depth,
            ops_per_sec: total.ops as f64 / total.elapsed_secs.max(1e-9),
            errors: total.errors,
            p50_us: all.p50_us,
            p99_us: all.p99_us,
            p999_us: all.p999_us,
            cpu_us_per_op: cpu_secs * 1e6 / total.ops.max(1) as f64,
            by_kind: total.by_kind.iter().map(|(kind, h)| (kind.clone(), Quantiles::of(h))).collect(),
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
            "| contender | workload | clients | depth | ops/s | p50 µs | p99 µs | p99.9 µs | p99 µs by access | CPU µs/op | errors |"
        );
        println!("|---|---|---:|---:|---:|---:|---:|---:|---|---:|---:|");
        for cell in &self.cells {
            let by_kind: Vec<String> = cell.by_kind.iter().map(|(kind, q)| format!("{kind} {:.0}", q.p99_us)).collect();
            println!(
                "| {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {} | {:.1} | {} |",
                cell.contender,
                cell.workload,
                cell.clients,
                cell.depth,
                cell.ops_per_sec,
                cell.p50_us,
                cell.p99_us,
                cell.p999_us,
                by_kind.join(", "),
                cell.cpu_us_per_op,
                cell.errors
            );
        }
        for skipped in &self.skipped {
            println!("| {} | skipped: {} | | | | | | | | | |", skipped.contender, skipped.reason);
        }
        self.print_ratios();
        println!();
        println!("Contenders:");
        for contender in &self.contenders {
            println!("- {}: {}", contender.name(), contender.describe());
        }
    }

    /// One table for each way of reaching hintsd measured (socket, ring).
    fn print_ratios(&self) {
        for ours in [Contender::Hintsd, Contender::HintsdRing] {
            self.print_ratios_of(ours.name());
        }
    }

    /// For each cell of `hintsd` (a hintsd contender), against each other contender's cell of
    /// the same workload, clients and depth (the echo's cell of the same clients and depth):
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
                    let theirs = self.cells.iter().find(|c| {
                        c.contender == other
                            && (c.workload == ours.workload || c.workload == "echo")
                            && c.clients == ours.clients
                            && c.depth == ours.depth
                    });
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
