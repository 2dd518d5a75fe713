//! `s3fetch-bench`: helpers for `bench/bench.py`.
//!
//! * `probe`: the server's own limit. Lists a bucket once (sequential ListObjectsV2 pages),
//!   then GETs every selected object — or, with `--part-size`, every range of that size of
//!   every object — with N requests in flight, reading and discarding the bodies (no file
//!   writes). Prints one JSON object: bytes, objects, requests, list/get/total seconds.
//! * `list`: prints every selected key as `KEY<TAB>SIZE<TAB>ETAG` through the S3 API.
//!
//!   Both take `--ca-bundle PEM` for an `https://` endpoint with a private CA.
//! * `run`: runs a command and writes its process tree's resource usage (CPU, peak RSS) as
//!   JSON. The driver launches every tool through it: a child forked straight from the
//!   (large) Python driver would inherit the driver's RSS high-water mark in `ru_maxrss`.

use std::sync::Arc;
use std::time::Instant;

use anyhow::Context as _;
use aws_sdk_s3::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_s3::Client;
use clap::{Parser, Subcommand};
use futures::stream::{self, StreamExt as _, TryStreamExt as _};

#[derive(Debug, Parser)]
#[command(name = "s3fetch-bench", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, clap::Args)]
struct Target {
    /// S3 endpoint, e.g. `http://127.0.0.1:9000` (path-style addressing).
    #[arg(long)]
    endpoint: String,
    /// Bucket.
    #[arg(long)]
    bucket: String,
    /// Only keys under this prefix.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Only keys in which this regex is found (Rust syntax).
    #[arg(long)]
    regex: Option<String>,
    /// Access key (default: `AWS_ACCESS_KEY_ID`, else the test kit's).
    #[arg(long, env = "AWS_ACCESS_KEY_ID", default_value = "s3fetch-test")]
    access_key: String,
    /// Secret key (default: `AWS_SECRET_ACCESS_KEY`, else the test kit's).
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "s3fetch-test-secret",
        hide_env_values = true
    )]
    secret_key: String,
    /// Region.
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// PEM file of CA certificates to trust besides the system's (an `https://` endpoint
    /// with a private CA, e.g. `s3fetch-testkit serve --tls`'s `ca_file`).
    #[arg(long, value_name = "PEM")]
    ca_bundle: Option<std::path::PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List once, then GET every selected object (or range) with N in flight; print JSON.
    Probe {
        #[command(flatten)]
        target: Target,
        /// Requests in flight.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// GET ranges of this many bytes instead of whole objects (objects larger than it
        /// are split).
        #[arg(long)]
        part_size: Option<u64>,
    },
    /// Print every selected key: `KEY<TAB>SIZE<TAB>ETAG` (ETag without quotes).
    List {
        #[command(flatten)]
        target: Target,
    },
    /// Run a command (stdio inherited), then write `{"exit","signal","user_s","sys_s",
    /// "maxrss_kib"}` of its process tree (waited-for descendants included) to FILE; exits
    /// with the command's code (128 + signal if killed).
    Run {
        /// Where the JSON goes.
        #[arg(long, value_name = "FILE")]
        rusage_out: std::path::PathBuf,
        /// The command and its arguments.
        #[arg(required = true, trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<std::ffi::OsString>,
    },
}

fn client(t: &Target) -> anyhow::Result<Client> {
    let creds = Credentials::new(&t.access_key, &t.secret_key, None, None, "s3fetch-bench");
    let mut conf = aws_sdk_s3::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(t.region.clone()))
        .credentials_provider(creds)
        .endpoint_url(&t.endpoint)
        .force_path_style(true);
    if let Some(path) = &t.ca_bundle {
        use aws_smithy_http_client::tls::{
            self, rustls_provider::CryptoMode, TlsContext, TrustStore,
        };
        let pem = std::fs::read(path)
            .with_context(|| format!("reading --ca-bundle {}", path.display()))?;
        // The system's roots and the bundle's certificates.
        let tls = TlsContext::builder()
            .with_trust_store(TrustStore::default().with_pem_certificate(pem))
            .build()
            .with_context(|| format!("--ca-bundle {}", path.display()))?;
        let http = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(CryptoMode::AwsLc))
            .tls_context(tls)
            .build_https();
        conf = conf.http_client(http);
    }
    Ok(Client::from_conf(conf.build()))
}

struct Obj {
    key: String,
    size: u64,
    etag: String,
}

async fn list_all(c: &Client, t: &Target) -> anyhow::Result<Vec<Obj>> {
    let re = t
        .regex
        .as_deref()
        .map(regex::Regex::new)
        .transpose()
        .context("bad --regex")?;
    let mut out = Vec::new();
    let mut pages = c
        .list_objects_v2()
        .bucket(&t.bucket)
        .prefix(&t.prefix)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        let page = page.with_context(|| format!("listing s3://{}/{}", t.bucket, t.prefix))?;
        for o in page.contents() {
            let Some(key) = o.key() else { continue };
            if key.ends_with('/') || re.as_ref().is_some_and(|r| !r.is_match(key)) {
                continue;
            }
            out.push(Obj {
                key: key.to_owned(),
                size: u64::try_from(o.size().unwrap_or(0)).unwrap_or(0),
                etag: o.e_tag().unwrap_or("").trim_matches('"').to_owned(),
            });
        }
    }
    Ok(out)
}

async fn get(c: &Client, bucket: &str, key: &str, range: Option<String>) -> anyhow::Result<u64> {
    let resp = c
        .get_object()
        .bucket(bucket)
        .key(key)
        .set_range(range)
        .send()
        .await
        .with_context(|| format!("GET {key}"))?;
    let mut body = resp.body;
    let mut n = 0u64;
    while let Some(chunk) = body
        .try_next()
        .await
        .with_context(|| format!("body of {key}"))?
    {
        n += chunk.len() as u64;
    }
    Ok(n)
}

async fn probe(t: Target, concurrency: usize, part_size: Option<u64>) -> anyhow::Result<()> {
    anyhow::ensure!(concurrency > 0, "--concurrency must be > 0");
    anyhow::ensure!(part_size != Some(0), "--part-size must be > 0");
    let c = client(&t)?;
    let t0 = Instant::now();
    let objs = list_all(&c, &t).await?;
    let list_secs = t0.elapsed().as_secs_f64();
    let mut reqs: Vec<(Arc<str>, Option<String>)> = Vec::new();
    let mut expected = 0u64;
    for o in &objs {
        expected += o.size;
        let key: Arc<str> = Arc::from(o.key.as_str());
        match part_size {
            Some(p) if o.size > p => {
                let mut start = 0;
                while start < o.size {
                    let end = (start + p).min(o.size) - 1;
                    reqs.push((key.clone(), Some(format!("bytes={start}-{end}"))));
                    start = end + 1;
                }
            }
            _ => reqs.push((key, None)),
        }
    }
    let n_reqs = reqs.len();
    let t1 = Instant::now();
    let bucket = t.bucket.as_str();
    let c = &c;
    let bytes: u64 = stream::iter(reqs)
        .map(|(key, range)| async move { get(c, bucket, &key, range).await })
        .buffer_unordered(concurrency)
        .try_fold(0u64, |acc, n| async move { Ok(acc + n) })
        .await?;
    let get_secs = t1.elapsed().as_secs_f64();
    let total = t0.elapsed().as_secs_f64();
    anyhow::ensure!(
        bytes == expected,
        "read {bytes} bytes, the listing says {expected}"
    );
    println!(
        "{{\"bucket\":\"{}\",\"objects\":{},\"requests\":{},\"bytes\":{},\"list_seconds\":{:.6},\
         \"get_seconds\":{:.6},\"seconds\":{:.6},\"concurrency\":{},\"part_size\":{}}}",
        t.bucket,
        objs.len(),
        n_reqs,
        bytes,
        list_secs,
        get_secs,
        total,
        concurrency,
        part_size.map_or_else(|| "null".to_owned(), |p| p.to_string())
    );
    Ok(())
}

async fn list(t: Target) -> anyhow::Result<()> {
    use std::io::Write as _;
    let c = client(&t)?;
    let objs = list_all(&c, &t).await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for o in objs {
        writeln!(out, "{}\t{}\t{}", o.key, o.size, o.etag)?;
    }
    out.flush()?;
    Ok(())
}

fn run(out: &std::path::Path, command: &[std::ffi::OsString]) -> anyhow::Result<u8> {
    use nix::sys::resource::{getrusage, UsageWho};
    use std::os::unix::process::ExitStatusExt as _;
    let (prog, args) = command.split_first().context("no command")?;
    let status = std::process::Command::new(prog)
        .args(args)
        .status()
        .with_context(|| format!("running {}", prog.to_string_lossy()))?;
    let ru = getrusage(UsageWho::RUSAGE_CHILDREN).context("getrusage")?;
    let secs = |t: nix::sys::time::TimeVal| t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6;
    let json = format!(
        "{{\"exit\":{},\"signal\":{},\"user_s\":{:.6},\"sys_s\":{:.6},\"maxrss_kib\":{}}}\n",
        status
            .code()
            .map_or_else(|| "null".to_owned(), |c| c.to_string()),
        status
            .signal()
            .map_or_else(|| "null".to_owned(), |s| s.to_string()),
        secs(ru.user_time()),
        secs(ru.system_time()),
        ru.max_rss()
    );
    std::fs::write(out, json).with_context(|| format!("writing {}", out.display()))?;
    let code = status
        .code()
        .or_else(|| status.signal().map(|s| 128 + s))
        .unwrap_or(1);
    Ok(u8::try_from(code & 0xff).unwrap_or(1))
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    if let Command::Run {
        rusage_out,
        command,
    } = &cli.command
    {
        return match run(rusage_out, command) {
            Ok(code) => std::process::ExitCode::from(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                std::process::ExitCode::from(127)
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting tokio: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let res = rt.block_on(async move {
        match cli.command {
            Command::Probe {
                target,
                concurrency,
                part_size,
            } => probe(target, concurrency, part_size).await,
            Command::List { target } => list(target).await,
            Command::Run { .. } => unreachable!("handled above"),
        }
    });
    match res {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
