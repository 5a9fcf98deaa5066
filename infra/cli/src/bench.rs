//! `switchyard bench …`: the benchmarks that need the emulator and the sandbox.

use anyhow::Result;
use clap::Subcommand;

#[derive(Subcommand)]
pub enum BenchCommand {
    /// K workers sharing one credential against a sandbox API limited to R per minute.
    Pacing {
        /// R: requests the sandbox allows per trailing minute.
        #[arg(long, default_value_t = 120)]
        rate: u32,
        /// Length of each run: two minutes, so the vendor's trailing window wraps.
        #[arg(long, default_value_t = 120)]
        seconds: u64,
        /// Worker counts to run, comma-separated.
        #[arg(long, value_delimiter = ',', default_values_t = [1usize, 4, 16])]
        workers: Vec<usize>,
        /// Length of the 429 storm injected a third of the way into the last run.
        #[arg(long, default_value_t = 10)]
        storm_seconds: u64,
    },
    /// Forged webhooks from many senders against the local stack while real tickets arrive:
    /// refusals per second and per CPU-second, and the real events' settle times.
    Flood {
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        /// Concurrent senders of forged requests.
        #[arg(long, default_value_t = 16)]
        senders: usize,
        /// Real signed tickets sent without and then during the flood.
        #[arg(long, default_value_t = 20)]
        real: usize,
    },
    /// Each function binary under a Lambda Runtime API emulator: init, first and warm
    /// invocations (build them first: `cargo build --release --bins`, or infra/bench-coldstart.sh).
    ColdStart {
        /// Process starts per function (figures are their medians).
        #[arg(long, default_value_t = 5)]
        cold: usize,
        /// Warm invocations after the first.
        #[arg(long, default_value_t = 20)]
        warm: usize,
        /// Print one JSON object (the last line) instead of the table.
        #[arg(long)]
        json: bool,
    },
    /// AWS requests, DynamoDB units and dollars per event: N Zendesk tickets (one action each)
    /// through the local stack, every AWS request counted by the emulator.
    Cost {
        #[arg(long, default_value_t = 200)]
        events: usize,
        /// Events per second (steady traffic).
        #[arg(long, default_value_t = 5.0)]
        rate: f64,
        /// All at six times the Zendesk budget's pace instead, so actions wait for budget.
        #[arg(long)]
        burst: bool,
        /// Print one JSON object (the last line) instead of the table.
        #[arg(long)]
        json: bool,
    },
}

pub async fn run(command: BenchCommand) -> Result<()> {
    match command {
        BenchCommand::Pacing {
            rate,
            seconds,
            workers,
            storm_seconds,
        } => {
            let storm = std::time::Duration::from_secs(storm_seconds);
            let runs = switchyard_infra::bench::pacing(rate, seconds, &workers, storm).await?;
            print!("{}", switchyard_infra::bench::render(rate, storm, &runs));
            Ok(())
        }
        BenchCommand::Flood {
            seconds,
            senders,
            real,
        } => {
            let report = switchyard_infra::flood::flood(seconds, senders, real).await?;
            print!("{}", report.render());
            Ok(())
        }
        BenchCommand::ColdStart { cold, warm, json } => {
            let runs = switchyard_infra::coldstart::run(cold, warm).await?;
            if json {
                println!("{}", serde_json::to_string(&runs)?);
            } else {
                print!("{}", switchyard_infra::coldstart::render(&runs));
            }
            Ok(())
        }
        BenchCommand::Cost {
            events,
            rate,
            burst,
            json,
        } => {
            let options = switchyard_infra::cost::CostOptions {
                events,
                rate,
                burst,
                idle: std::time::Duration::from_secs(10),
            };
            let report = switchyard_infra::cost::cost(&options).await?;
            if json {
                println!("{}", serde_json::to_string(&report)?);
            } else {
                print!("{}", switchyard_infra::cost::render(&report));
            }
            Ok(())
        }
    }
}
