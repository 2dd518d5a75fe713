//! `s3fetch-testkit`: run the test S3 server (`serve`) or write sample data (`generate`).

mod quirk_flags;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Parser, Subcommand};
use s3fetch_testkit::{
    FaultPlan, GenerateOptions, ServerOptions, Store, TestServer, DEFAULT_ACCESS_KEY,
    DEFAULT_SECRET_KEY,
};

/// A local S3 server for s3fetch's tests, benchmarks and quickstart.
#[derive(Debug, Parser)]
#[command(name = "s3fetch-testkit", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve a data directory over S3 on 127.0.0.1; prints `endpoint=http://127.0.0.1:PORT`
    /// on stdout when ready (with --tls: `endpoint=https://127.0.0.1:PORT`, then
    /// `ca_file=PATH`). Stops on SIGINT / SIGTERM; SIGUSR1 writes the request and fault
    /// counts so far (see --stats-file).
    Serve(Box<ServeArgs>),
    /// Write a sample bucket straight into a data directory (recreating the bucket).
    Generate(GenerateArgs),
    /// Print every object of a bucket straight from a data directory (no server):
    /// one `KEY<TAB>SIZE<TAB>MD5HEX` line per object, in key order.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
struct ListArgs {
    /// Data directory.
    #[arg(long)]
    data: PathBuf,
    /// Bucket to list.
    #[arg(long)]
    bucket: String,
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// TCP port on 127.0.0.1 (0 = pick a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Data directory (created if missing).
    #[arg(long)]
    data: PathBuf,
    /// Access key clients must sign with.
    #[arg(long, default_value = DEFAULT_ACCESS_KEY)]
    access_key: String,
    /// Secret key clients must sign with.
    #[arg(long, default_value = DEFAULT_SECRET_KEY)]
    secret_key: String,
    /// Delay before answering every GetObject/HeadObject, in milliseconds.
    #[arg(long, default_value_t = 0)]
    get_latency_ms: u64,
    /// Delay of every ListObjects request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    list_latency_ms: u64,
    /// Allow anonymous reads of this bucket (repeatable).
    #[arg(long = "public-bucket", value_name = "BUCKET")]
    public_buckets: Vec<String>,
    /// Put an object in an archive storage class (repeatable): `bkt/key=GLACIER`, or
    /// `bkt/key=DEEP_ARCHIVE:restored` for one with a restored copy. A GET of an archived
    /// object that is not restored answers 403 InvalidObjectState.
    #[arg(long = "archived", value_name = "BUCKET/KEY=CLASS[:restored]", value_parser = parse_archived)]
    archived: Vec<(String, String, String, bool)>,
    /// Cap the bytes sent on every connection, in megabits per second (1 Mbps = 125,000
    /// bytes/s; 0 = no cap). Applied per TCP connection, responses only.
    #[arg(long, default_value_t = 0.0)]
    bandwidth_mbps: f64,
    /// Inject faults, e.g. `slow_down=0.01,cut_body_after=0.01:65536,seed=7`
    /// (`--help` shows the syntax).
    #[arg(long, value_name = "SPEC", value_parser = parse_faults, long_help = FAULTS_HELP)]
    faults: Option<FaultPlan>,
    /// Ignore Range on GET/HEAD: answer 200 with the whole object (and its full checksum),
    /// like some S3-compatible stores.
    #[arg(long)]
    ignore_range: bool,
    /// Send no full-object checksums (like stores that keep none): clients can only check
    /// the ETag.
    #[arg(long)]
    no_checksums: bool,
    /// Serve HTTPS: make a private CA and a certificate for 127.0.0.1, ::1 and localhost at
    /// start, write the CA certificate to --ca-file (clients trust it with AWS_CA_BUNDLE,
    /// --ca-bundle, ...) and answer on `https://127.0.0.1:PORT`. Faults, latency and the
    /// bandwidth cap work the same. A new CA is made at every start.
    #[arg(long)]
    tls: bool,
    /// With --tls: where to write the CA certificate (PEM) [default: DATA/ca.pem].
    #[arg(long, value_name = "PATH", requires = "tls")]
    ca_file: Option<PathBuf>,
    /// With --tls: offer HTTP/2 (ALPN h2) besides HTTP/1.1 (S3 itself speaks HTTP/1.1 only).
    #[arg(long, requires = "tls")]
    http2: bool,
    /// On shutdown (SIGINT/SIGTERM) write the fault and request counts to this file as JSON
    /// (the same line is always printed on stderr); also on SIGUSR1, without stopping (the
    /// counts so far; the file is replaced atomically, so a reader that deleted it before
    /// the signal waits for it to reappear). Without this option SIGUSR1 prints the line on
    /// stderr.
    #[arg(long, value_name = "PATH")]
    stats_file: Option<PathBuf>,
    #[command(flatten, next_help_heading = "Bucket quirks")]
    quirks: quirk_flags::QuirkArgs,
}

const FAULTS_HELP: &str = "\
Inject faults, deterministically (seeded). SPEC is a comma-separated list of
  seed=U64  (default 0)
  KIND=PROBABILITY[:PARAM]...[@OPTION]...
KIND:
  slow_down          GET/HEAD: 503 SlowDown
  internal_error     GET/HEAD: 500 InternalError
  forbidden          GET/HEAD: 403 AccessDenied
  not_found          GET/HEAD: 404 NoSuchKey
  reset_before_head  GET/HEAD: connection closed without a response
  cut_body_after     GET: head + exactly BYTES body bytes, then abort
                     (PARAM: BYTES, required)
  stall_body         GET: head + BYTES body bytes, silence for DURATION,
                     then the rest (or abort)
                     (PARAM: DURATION[:BYTES][:abort]; BYTES default 1024)
  corrupt            GET: body bytes flipped; length, ETag, checksum kept
  etag_change        ranged GET not starting at 0: 412 PreconditionFailed
                     with If-Match, else a different ETag header
  list_slow_down     ListObjects(V2): 503 SlowDown
OPTION:
  max=N        only attempts 1..=N of the same key+range (0 = all, default)
  sticky       decide per key+range instead of per attempt
  ranged       only GET/HEAD requests with a Range header
  bucket=NAME  prefix=P  key=K (repeatable)
BYTES: integer with optional k/m/g (KiB/MiB/GiB). DURATION: 5s, 1.5s, 250ms.
Example:
  slow_down=0.01,cut_body_after=0.01:64k,stall_body=0.01:5s,seed=7
Fault counts are printed as a JSON line on stderr at shutdown
(and written to --stats-file).";

fn parse_faults(s: &str) -> Result<FaultPlan, String> {
    FaultPlan::parse(s).map_err(|e| e.to_string())
}

#[derive(Debug, clap::Args)]
struct GenerateArgs {
    /// Data directory (created if missing).
    #[arg(long)]
    data: PathBuf,
    /// Bucket to (re)create.
    #[arg(long, default_value = "sample")]
    bucket: String,
    /// Number of objects (omit all shape flags for the quickstart sample layout).
    #[arg(long)]
    objects: Option<u64>,
    /// Size of every object in bytes (default: random 1..=64 KiB).
    #[arg(long)]
    size: Option<u64>,
    /// Prefix of every key.
    #[arg(long, default_value = "")]
    prefix: String,
    /// Spread objects over this many `folder-NNNN/` subfolders.
    #[arg(long, default_value_t = 0)]
    folders: u64,
    /// Give every K-th object the --suffix extension instead of `.bin`.
    #[arg(long, default_value_t = 0, value_name = "K")]
    suffix_every: u64,
    /// Extension used with --suffix-every.
    #[arg(long, default_value = ".json")]
    suffix: String,
    /// How objects are spread over --folders: `round-robin` (object i in folder i % F) or
    /// `contiguous` (consecutive blocks of objects per folder, so key order = object order).
    #[arg(long, value_enum, default_value_t = Layout::RoundRobin)]
    folder_layout: Layout,
    /// Random seed (sizes and contents).
    #[arg(long, default_value_t = 42)]
    seed: u64,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
enum Layout {
    RoundRobin,
    Contiguous,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,s3s=off")),
        )
        .init();
    let result = match cli.command {
        Command::Serve(args) => serve(*args),
        Command::Generate(args) => generate(&args),
        Command::List(args) => list(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn parse_archived(text: &str) -> Result<(String, String, String, bool), String> {
    let bad = || format!("{text:?}: expected BUCKET/KEY=CLASS or BUCKET/KEY=CLASS:restored");
    let (object, class) = text.rsplit_once('=').ok_or_else(bad)?;
    let (bucket, key) = object.split_once('/').ok_or_else(bad)?;
    let (class, restored) = match class.strip_suffix(":restored") {
        Some(class) => (class, true),
        None => (class, false),
    };
    if bucket.is_empty() || key.is_empty() || class.is_empty() {
        return Err(bad());
    }
    Ok((bucket.into(), key.into(), class.into(), restored))
}

fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for b in &args.public_buckets {
        anyhow::ensure!(
            s3s::path::check_bucket_name(b),
            "invalid --public-bucket name {b:?}"
        );
    }
    anyhow::ensure!(
        !args.access_key.is_empty(),
        "--access-key must not be empty"
    );
    anyhow::ensure!(
        !args.secret_key.is_empty(),
        "--secret-key must not be empty"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting tokio runtime")?;
    runtime.block_on(async move {
        let mut options = ServerOptions {
            data_dir: Some(args.data),
            port: args.port,
            access_key: args.access_key,
            secret_key: args.secret_key,
            get_latency: Duration::from_millis(args.get_latency_ms),
            list_latency: Duration::from_millis(args.list_latency_ms),
            public_buckets: args.public_buckets,
            bandwidth_bytes_per_sec: mbps_to_bytes(args.bandwidth_mbps)?,
            faults: args.faults.unwrap_or_default(),
            range_returns_full_object: args.ignore_range,
            checksums: !args.no_checksums,
            tls: args.tls,
            ca_file: args.ca_file,
            http2: args.http2,
            ..Default::default()
        };
        args.quirks.apply(&mut options);
        if !options.faults.is_empty() {
            tracing::info!(faults = %options.faults, "injecting faults");
        }
        // Before the ready line: a SIGUSR1 sent as soon as it is read must not kill us.
        let mut signals = Signals::install()?;
        let server = TestServer::start_with(options).await?;
        for (bucket, key, class, restored) in &args.archived {
            server.archive_key(bucket, key, class, *restored);
        }
        for b in server.store().list_buckets() {
            let n = server.store().object_count(&b.name).unwrap_or(0);
            tracing::info!(bucket = %b.name, objects = n, "serving bucket");
        }
        {
            // The endpoint line first (readers wait for it; the CA file is in place by
            // then), both in one write so a reader that stops after the first line
            // doesn't make the second fail.
            let mut ready = format!("endpoint={}\n", server.endpoint());
            if let Some(ca) = server.ca_file() {
                ready += &format!("ca_file={}\n", ca.display());
            }
            let mut out = std::io::stdout().lock();
            out.write_all(ready.as_bytes())?;
            out.flush()?;
        }
        while signals.next().await == Wanted::Stats {
            let stats = stats_json(&server);
            match &args.stats_file {
                // A reader waits for the file: say why it never comes, but keep serving.
                Some(path) => {
                    if let Err(e) = write_stats(path, &stats) {
                        tracing::warn!(error = %format!("{e:#}"), "SIGUSR1: stats not written");
                    }
                }
                None => eprintln!("{stats}"),
            }
        }
        tracing::info!("shutting down");
        let stats = stats_json(&server);
        eprintln!("{stats}");
        if let Some(path) = &args.stats_file {
            write_stats(path, &stats)?;
        }
        server.shutdown().await;
        Ok(())
    })
}

/// `{"fault_counts":{KIND:N,...},"http_requests":N,"requests":{OP:N,...}}`.
fn stats_json(server: &TestServer) -> String {
    fn map(m: &std::collections::BTreeMap<String, u64>) -> String {
        let items: Vec<String> = m
            .iter()
            .map(|(k, v)| format!("\"{}\":{v}", k.escape_default()))
            .collect();
        format!("{{{}}}", items.join(","))
    }
    let requests = server.request_counts();
    format!(
        "{{\"fault_counts\":{},\"http_requests\":{},\"requests\":{}}}",
        map(&server.fault_counts()),
        requests.http_requests,
        map(&requests.by_op)
    )
}

fn mbps_to_bytes(mbps: f64) -> anyhow::Result<Option<u64>> {
    anyhow::ensure!(
        mbps.is_finite() && mbps >= 0.0,
        "--bandwidth-mbps must be a non-negative number"
    );
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let bytes = (mbps * 125_000.0).round() as u64;
    Ok((bytes > 0).then_some(bytes))
}

fn list(args: &ListArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.data)
        .with_context(|| format!("opening data directory {}", args.data.display()))?;
    anyhow::ensure!(
        store.bucket_exists(&args.bucket),
        "no such bucket: {}",
        args.bucket
    );
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut after: Option<String> = None;
    loop {
        let page = store.list(
            &args.bucket,
            &s3fetch_testkit::ListQuery {
                prefix: "",
                delimiter: None,
                start_after: after.as_deref(),
                max_keys: 10_000,
            },
        )?;
        for (key, meta) in &page.objects {
            writeln!(out, "{key}\t{}\t{}", meta.size, meta.etag_hex())?;
        }
        if !page.is_truncated || page.last_item.is_none() {
            break;
        }
        after = page.last_item;
    }
    out.flush()?;
    Ok(())
}

/// Writes the stats line to `path` through a temporary file renamed over it, so a reader
/// never sees a partly written file.
fn write_stats(path: &std::path::Path, stats: &str) -> anyhow::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, format!("{stats}\n"))
        .with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("writing {}", path.display()))
}

/// What a signal asks of `serve`.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    /// SIGUSR1: the counts so far.
    Stats,
    /// SIGINT / SIGTERM: stop.
    Shutdown,
}

/// The signals `serve` handles, installed once (before the ready line).
struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> anyhow::Result<Self> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Self {
            int: signal(SignalKind::interrupt()).context("installing SIGINT handler")?,
            term: signal(SignalKind::terminate()).context("installing SIGTERM handler")?,
            usr1: signal(SignalKind::user_defined1()).context("installing SIGUSR1 handler")?,
        })
    }

    async fn next(&mut self) -> Wanted {
        tokio::select! {
            _ = self.int.recv() => Wanted::Shutdown,
            _ = self.term.recv() => Wanted::Shutdown,
            _ = self.usr1.recv() => Wanted::Stats,
        }
    }
}

fn generate(args: &GenerateArgs) -> anyhow::Result<()> {
    let store = Store::open(&args.data)
        .with_context(|| format!("opening data directory {}", args.data.display()))?;
    let opts = GenerateOptions {
        bucket: args.bucket.clone(),
        objects: args.objects,
        size: args.size,
        prefix: args.prefix.clone(),
        folders: args.folders,
        suffix_every: args.suffix_every,
        suffix: args.suffix.clone(),
        seed: args.seed,
        contiguous_folders: matches!(args.folder_layout, Layout::Contiguous),
    };
    let t0 = std::time::Instant::now();
    let report = s3fetch_testkit::generate(&store, &opts)?;
    println!(
        "generated bucket={} objects={} bytes={} in {:.2}s (data dir {})",
        report.bucket,
        report.objects,
        report.bytes,
        t0.elapsed().as_secs_f64(),
        args.data.display()
    );
    Ok(())
}
