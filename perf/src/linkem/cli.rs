//! The command line of `mpterm-linkem`: two ports, and per direction an impairment. Every
//! impairment option exists three times: `--rate` sets both directions, `--a-to-b-rate` and
//! `--b-to-a-rate` override it for one. Port A is the first `--vdev`, port B the second.
//! The payload rewriter (`--rewrite`, `--rewrite-skip`, see [`super::rewrite`]) is set the same
//! way.

use std::time::Duration;

use clap::{Args, Parser};

use super::impairment::{BurstLoss, Impairment, Probability};
use super::rewrite::RewritePlan;
use crate::gen::cli::{parse_bytes, DEFAULT_EAL_ARGS};

/// The serialisation queue when none is given: about 26 ms at 80 Mbit/s.
pub const DEFAULT_QUEUE: &str = "256KiB";
/// How much longer a reordered frame is held when `--reorder-delay` is not given.
pub const DEFAULT_REORDER_DELAY: &str = "1ms";

#[derive(Debug, Parser)]
#[command(
    name = "mpterm-linkem",
    about = "Link emulator over two DPDK ports: rate, delay, jitter, loss, reordering, \
             duplication, cuts and payload rewriting, per direction",
    long_about = None
)]
pub struct Cli {
    /// A port, given to the EAL as `--vdev`: twice, port A then port B (for example
    /// `net_af_packet0,iface=m0`).
    #[arg(long, value_name = "DEVICE", required = true, num_args = 1)]
    pub vdev: Vec<String>,

    /// Seed of the random streams (each direction has its own).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,

    /// Frames that may be held at once, both directions together (the mbuf pool's size).
    #[arg(long, value_name = "FRAMES", default_value_t = 32_767)]
    pub frames: u32,

    /// Seconds between counter lines on stderr (0: only at exit).
    #[arg(long, value_name = "SECONDS", default_value_t = 1)]
    pub stats_interval: u64,

    /// Sleep this long when the loop is idle (nothing arrived, nothing due within it); 0 polls
    /// without pause. Adds up to the sleep plus the kernel's timer slack to a frame's delay.
    #[arg(long, value_name = "TIME", value_parser = parse_time, default_value = "0")]
    pub idle_sleep: Duration,

    /// Stop after this many seconds (0: run until SIGINT or SIGTERM).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub duration: u64,

    #[command(flatten)]
    pub both: BothDirections,
    #[command(flatten)]
    pub a_to_b: AToB,
    #[command(flatten)]
    pub b_to_a: BToA,

    /// EAL arguments, after `--` (default: --no-huge -m 512 --no-pci --no-shconf).
    #[arg(last = true)]
    pub eal: Vec<String>,
}

/// One direction's impairment options, each unset unless given.
#[derive(Debug, Clone, Default)]
pub struct ImpairmentOptions {
    pub rate: Option<u64>,
    pub delay: Option<Duration>,
    pub jitter: Option<Duration>,
    pub loss: Option<Probability>,
    pub burst_loss: Option<BurstLoss>,
    pub reorder: Option<Probability>,
    pub reorder_delay: Option<Duration>,
    pub duplicate: Option<Probability>,
    pub queue: Option<u64>,
    pub rewrite: Option<u64>,
    pub rewrite_skip: Option<u64>,
}

impl ImpairmentOptions {
    /// These options where given, `fallback`'s elsewhere.
    fn or(&self, fallback: &ImpairmentOptions) -> ImpairmentOptions {
        ImpairmentOptions {
            rate: self.rate.or(fallback.rate),
            delay: self.delay.or(fallback.delay),
            jitter: self.jitter.or(fallback.jitter),
            loss: self.loss.or(fallback.loss),
            burst_loss: self.burst_loss.or(fallback.burst_loss),
            reorder: self.reorder.or(fallback.reorder),
            reorder_delay: self.reorder_delay.or(fallback.reorder_delay),
            duplicate: self.duplicate.or(fallback.duplicate),
            queue: self.queue.or(fallback.queue),
            rewrite: self.rewrite.or(fallback.rewrite),
            rewrite_skip: self.rewrite_skip.or(fallback.rewrite_skip),
        }
    }
}

/// The impairment options of one set (both directions, or one), with their flag prefix. The
/// argument ids carry the prefix too: clap keys parsed values by id, and the three sets share
/// field names.
macro_rules! impairment_args {
    ($name:ident, $prefix:literal, $heading:literal) => {
        #[derive(Debug, Clone, Args)]
        #[command(next_help_heading = $heading)]
        pub struct $name {
            /// Link rate: bit, kbit, mbit, gbit (0: unlimited).
            #[arg(id = concat!($prefix, "rate"), long = concat!($prefix, "rate"), value_name = "RATE", value_parser = parse_rate)]
            pub rate: Option<u64>,
            /// One-way delay: ns, us, ms, s.
            #[arg(id = concat!($prefix, "delay"), long = concat!($prefix, "delay"), value_name = "TIME", value_parser = parse_time)]
            pub delay: Option<Duration>,
            /// Uniform jitter around the delay (never reorders by itself).
            #[arg(id = concat!($prefix, "jitter"), long = concat!($prefix, "jitter"), value_name = "TIME", value_parser = parse_time)]
            pub jitter: Option<Duration>,
            /// Random loss, in percent.
            #[arg(id = concat!($prefix, "loss"), long = concat!($prefix, "loss"), value_name = "PERCENT", value_parser = parse_percent)]
            pub loss: Option<Probability>,
            /// Gilbert-Elliott burst loss: P(good to bad),P(bad to good), in percent.
            #[arg(id = concat!($prefix, "burst-loss"), long = concat!($prefix, "burst-loss"), value_name = "P,R", value_parser = parse_burst_loss)]
            pub burst_loss: Option<BurstLoss>,
            /// Probability that a frame is held back and overtaken, in percent.
            #[arg(id = concat!($prefix, "reorder"), long = concat!($prefix, "reorder"), value_name = "PERCENT", value_parser = parse_percent)]
            pub reorder: Option<Probability>,
            /// How much longer a reordered frame is held (default 1ms).
            #[arg(id = concat!($prefix, "reorder-delay"), long = concat!($prefix, "reorder-delay"), value_name = "TIME", value_parser = parse_time)]
            pub reorder_delay: Option<Duration>,
            /// Probability that a frame arrives twice, in percent.
            #[arg(id = concat!($prefix, "duplicate"), long = concat!($prefix, "duplicate"), value_name = "PERCENT", value_parser = parse_percent)]
            pub duplicate: Option<Probability>,
            /// Bytes that may wait for the wire; beyond, tail drop (default 256KiB; needs a rate).
            #[arg(id = concat!($prefix, "queue"), long = concat!($prefix, "queue"), value_name = "BYTES", value_parser = parse_bytes)]
            pub queue: Option<u64>,
            /// Rewrite the first payload byte of this many TCP segments carrying data, fixing
            /// the TCP checksum, as an ALG would (only MPTCP's DSS checksum can tell; 0: off).
            #[arg(id = concat!($prefix, "rewrite"), long = concat!($prefix, "rewrite"), value_name = "SEGMENTS")]
            pub rewrite: Option<u64>,
            /// Data segments passed untouched before the rewriting starts (default 0).
            #[arg(id = concat!($prefix, "rewrite-skip"), long = concat!($prefix, "rewrite-skip"), value_name = "SEGMENTS")]
            pub rewrite_skip: Option<u64>,
        }

        impl $name {
            /// The options given.
            pub fn options(&self) -> ImpairmentOptions {
                ImpairmentOptions {
                    rate: self.rate,
                    delay: self.delay,
                    jitter: self.jitter,
                    loss: self.loss,
                    burst_loss: self.burst_loss,
                    reorder: self.reorder,
                    reorder_delay: self.reorder_delay,
                    duplicate: self.duplicate,
                    queue: self.queue,
                    rewrite: self.rewrite,
                    rewrite_skip: self.rewrite_skip,
                }
            }
        }
    };
}

impairment_args!(BothDirections, "", "Both directions");
impairment_args!(AToB, "a-to-b-", "From port A to port B (overrides)");
impairment_args!(BToA, "b-to-a-", "From port B to port A (overrides)");

/// Why the options cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArgsError {
    #[error("--vdev must be given twice (port A, then port B), not {0} times")]
    Ports(usize),
    #[error("--frames must be at least 64")]
    Frames,
    #[error("{0}: --reorder needs a --reorder-delay above 0")]
    ReorderWithoutDelay(&'static str),
}

/// The emulator's configuration, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkemConfig {
    /// The ports' device names (the `--vdev` up to its first comma), A then B.
    pub ports: [String; 2],
    pub a_to_b: Impairment,
    pub b_to_a: Impairment,
    pub a_to_b_rewrite: RewritePlan,
    pub b_to_a_rewrite: RewritePlan,
    pub seed: u64,
    pub frames: u32,
    pub stats_interval: Duration,
    pub idle_sleep: Duration,
    pub duration: Option<Duration>,
    /// Every argument for `rte_eal_init`, the `--vdev`s included.
    pub eal_args: Vec<String>,
}

impl Cli {
    /// Checks the options and merges each direction's over the shared ones.
    pub fn validate(&self) -> Result<LinkemConfig, ArgsError> {
        let [a, b] = <&[String; 2]>::try_from(self.vdev.as_slice())
            .map_err(|_| ArgsError::Ports(self.vdev.len()))?;
        if self.frames < 64 {
            return Err(ArgsError::Frames);
        }
        let device_name = |vdev: &String| vdev.split(',').next().unwrap_or_default().to_owned();
        let both = self.both.options();
        let a_to_b_options = self.a_to_b.options().or(&both);
        let b_to_a_options = self.b_to_a.options().or(&both);
        let a_to_b = impairment("a-to-b", &a_to_b_options)?;
        let b_to_a = impairment("b-to-a", &b_to_a_options)?;
        let mut eal_args: Vec<String> = if self.eal.is_empty() {
            DEFAULT_EAL_ARGS.iter().map(|arg| arg.to_string()).collect()
        } else {
            self.eal.clone()
        };
        eal_args.extend(self.vdev.iter().map(|vdev| format!("--vdev={vdev}")));
        Ok(LinkemConfig {
            ports: [device_name(a), device_name(b)],
            a_to_b,
            b_to_a,
            a_to_b_rewrite: rewrite_plan(&a_to_b_options),
            b_to_a_rewrite: rewrite_plan(&b_to_a_options),
            seed: self.seed,
            frames: self.frames,
            stats_interval: Duration::from_secs(self.stats_interval),
            idle_sleep: self.idle_sleep,
            duration: (self.duration > 0).then(|| Duration::from_secs(self.duration)),
            eal_args,
        })
    }
}

/// One direction's impairment from its merged options.
fn impairment(
    direction: &'static str,
    options: &ImpairmentOptions,
) -> Result<Impairment, ArgsError> {
    let nanos = |time: Option<Duration>| time.map_or(0, |time| time.as_nanos() as u64);
    let reorder = options.reorder.unwrap_or(Probability::NEVER);
    let reorder_delay = options
        .reorder_delay
        .unwrap_or_else(|| parse_time(DEFAULT_REORDER_DELAY).expect("a valid default"));
    if !reorder.is_never() && reorder_delay.is_zero() {
        return Err(ArgsError::ReorderWithoutDelay(direction));
    }
    Ok(Impairment {
        rate_bps: options.rate.unwrap_or(0),
        delay_ns: nanos(options.delay),
        jitter_ns: nanos(options.jitter),
        loss: options.loss.unwrap_or(Probability::NEVER),
        burst_loss: options.burst_loss,
        reorder,
        reorder_delay_ns: reorder_delay.as_nanos() as u64,
        duplicate: options.duplicate.unwrap_or(Probability::NEVER),
        queue_bytes: options
            .queue
            .unwrap_or_else(|| parse_bytes(DEFAULT_QUEUE).expect("a valid default")),
        down: false,
    })
}

/// One direction's rewriting from its merged options.
fn rewrite_plan(options: &ImpairmentOptions) -> RewritePlan {
    RewritePlan {
        skip_segments: options.rewrite_skip.unwrap_or(0),
        segments: options.rewrite.unwrap_or(0),
    }
}

/// Splits a number from its unit: `"2.5ms"` is `(2.5, "ms")`.
fn number_and_unit(text: &str) -> Result<(f64, &str), String> {
    let end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(end);
    let number: f64 = digits
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    Ok((number, unit))
}

/// A rate in bits per second: `80mbit`, `1.5gbit`, `500kbit`, `9600bit`, or `0` (unlimited).
/// Units are powers of 1000, as in tc.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let (number, unit) = number_and_unit(text)?;
    let scale = match unit.to_ascii_lowercase().as_str() {
        "" if number == 0.0 => 1.0,
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        _ => return Err(format!("{text:?}: the unit is bit, kbit, mbit or gbit")),
    };
    let bps = number * scale;
    if !(0.0..=1e12).contains(&bps) {
        return Err(format!("{text:?} is out of range (0 to 1000gbit)"));
    }
    Ok(bps.round() as u64)
}

/// A time: `10ms`, `1.5ms`, `500us`, `200ns`, `1s`, or `0`.
pub fn parse_time(text: &str) -> Result<Duration, String> {
    let (number, unit) = number_and_unit(text)?;
    let nanos_per_unit = match unit {
        "" if number == 0.0 => 1.0,
        "ns" => 1.0,
        "us" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return Err(format!("{text:?}: the unit is ns, us, ms or s")),
    };
    let nanos = number * nanos_per_unit;
    if !(0.0..=3.6e12).contains(&nanos) {
        return Err(format!("{text:?} is out of range (0 to 1 hour)"));
    }
    Ok(Duration::from_nanos(nanos.round() as u64))
}

/// A probability in percent, `0.5%` (the `%` is required, so that `0.5` is not taken for 50 %).
pub fn parse_percent(text: &str) -> Result<Probability, String> {
    let Some(number) = text.strip_suffix('%') else {
        return Err(format!("{text:?}: a percentage ends in %"));
    };
    let percent: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a percentage"))?;
    if !(0.0..=100.0).contains(&percent) {
        return Err(format!("{text:?} is not between 0% and 100%"));
    }
    Ok(Probability::per_million((percent * 10_000.0).round() as u32))
}

/// Gilbert-Elliott parameters `P,R` in percent: `1%,25%`.
pub fn parse_burst_loss(text: &str) -> Result<BurstLoss, String> {
    let Some((p, r)) = text.split_once(',') else {
        return Err(format!(
            "{text:?}: give P(good to bad),P(bad to good), e.g. 1%,25%"
        ));
    };
    let r = parse_percent(r)?;
    if r.is_never() {
        return Err(format!("{text:?}: with R 0% a burst never ends"));
    }
    Ok(BurstLoss {
        p: parse_percent(p)?,
        r,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<LinkemConfig, String> {
        let base = [
            "mpterm-linkem",
            "--vdev",
            "net_af_packet0,iface=m0",
            "--vdev",
            "net_af_packet1,iface=m1",
        ];
        let cli = Cli::try_parse_from(base.iter().chain(args).copied())
            .map_err(|error| error.to_string())?;
        cli.validate().map_err(|error| error.to_string())
    }

    #[test]
    fn without_options_nothing_is_impaired() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.ports, ["net_af_packet0", "net_af_packet1"]);
        for direction in [config.a_to_b, config.b_to_a] {
            assert_eq!(direction.rate_bps, 0);
            assert_eq!(direction.delay_ns, 0);
            assert!(direction.loss.is_never() && direction.reorder.is_never());
            assert_eq!(direction.burst_loss, None);
            assert_eq!(direction.queue_bytes, 256 << 10);
            assert!(!direction.down);
        }
        assert_eq!(
            config.eal_args,
            [
                "--no-huge",
                "-m",
                "512",
                "--no-pci",
                "--no-shconf",
                "--vdev=net_af_packet0,iface=m0",
                "--vdev=net_af_packet1,iface=m1"
            ]
        );
        assert_eq!(config.duration, None);
        assert_eq!(config.idle_sleep, Duration::ZERO);
    }

    #[test]
    fn shared_options_set_both_directions_and_prefixed_ones_override_one() {
        let config = parse(&[
            "--rate",
            "80mbit",
            "--delay",
            "10ms",
            "--jitter",
            "1ms",
            "--loss",
            "0.5%",
            "--burst-loss",
            "1%,25%",
            "--reorder",
            "1%",
            "--duplicate",
            "0.1%",
            "--queue",
            "128KiB",
            "--b-to-a-rate",
            "20mbit",
            "--b-to-a-loss",
            "0%",
            "--a-to-b-reorder-delay",
            "3ms",
            "--seed",
            "42",
            "--idle-sleep",
            "50us",
            "--",
            "--no-huge",
            "-m",
            "256",
        ])
        .unwrap();
        let a_to_b = config.a_to_b;
        assert_eq!(a_to_b.rate_bps, 80_000_000);
        assert_eq!(a_to_b.delay_ns, 10_000_000);
        assert_eq!(a_to_b.jitter_ns, 1_000_000);
        assert_eq!(a_to_b.loss, Probability::per_million(5000));
        assert_eq!(
            a_to_b.burst_loss,
            Some(BurstLoss {
                p: Probability::per_mille(10),
                r: Probability::per_mille(250)
            })
        );
        assert_eq!(a_to_b.reorder, Probability::per_mille(10));
        assert_eq!(a_to_b.reorder_delay_ns, 3_000_000);
        assert_eq!(a_to_b.duplicate, Probability::per_mille(1));
        assert_eq!(a_to_b.queue_bytes, 128 << 10);
        let b_to_a = config.b_to_a;
        assert_eq!(b_to_a.rate_bps, 20_000_000);
        assert!(b_to_a.loss.is_never());
        assert_eq!(b_to_a.delay_ns, 10_000_000);
        assert_eq!(b_to_a.reorder_delay_ns, 1_000_000);
        assert_eq!(config.seed, 42);
        assert_eq!(config.idle_sleep, Duration::from_micros(50));
        assert_eq!(&config.eal_args[..3], ["--no-huge", "-m", "256"]);
    }

    #[test]
    fn rewriting_is_off_unless_asked_and_set_per_direction() {
        let config = parse(&[]).unwrap();
        assert_eq!(config.a_to_b_rewrite, RewritePlan::default());
        assert_eq!(config.b_to_a_rewrite, RewritePlan::default());
        let config = parse(&["--a-to-b-rewrite", "3", "--a-to-b-rewrite-skip", "100"]).unwrap();
        assert_eq!(
            config.a_to_b_rewrite,
            RewritePlan {
                skip_segments: 100,
                segments: 3
            }
        );
        assert_eq!(config.b_to_a_rewrite, RewritePlan::default());
        let config = parse(&["--rewrite", "1", "--b-to-a-rewrite", "0"]).unwrap();
        assert_eq!(config.a_to_b_rewrite.segments, 1);
        assert_eq!(config.b_to_a_rewrite.segments, 0);
        assert!(parse(&["--rewrite", "-1"]).is_err());
    }

    #[test]
    fn unusable_values_are_refused_with_a_reason() {
        for args in [
            &["--rate", "80"][..],
            &["--rate", "80mbps"],
            &["--delay", "10"],
            &["--delay", "-1ms"],
            &["--loss", "0.5"],
            &["--loss", "101%"],
            &["--burst-loss", "1%"],
            &["--burst-loss", "1%,0%"],
            &["--queue", "1TB"],
            &["--reorder", "1%", "--reorder-delay", "0"],
            &["--frames", "10"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
        let one_port = Cli::try_parse_from(["mpterm-linkem", "--vdev", "net_af_packet0,iface=m0"])
            .unwrap()
            .validate();
        assert_eq!(one_port, Err(ArgsError::Ports(1)));
    }

    #[test]
    fn units() {
        assert_eq!(parse_rate("1.5gbit"), Ok(1_500_000_000));
        assert_eq!(parse_rate("500kbit"), Ok(500_000));
        assert_eq!(parse_rate("0"), Ok(0));
        assert_eq!(parse_time("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_time("1.5ms"), Ok(Duration::from_micros(1500)));
        assert_eq!(parse_time("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_percent("0.05%"), Ok(Probability::per_million(500)));
        assert_eq!(parse_percent("100%"), Ok(Probability::ALWAYS));
    }
}
