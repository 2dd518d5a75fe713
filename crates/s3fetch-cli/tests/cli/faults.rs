//! The real `s3fetch` binary against the test kit's server with injected faults, and against
//! local trouble (a full disk, a read-only or unwritable directory, over-long names and
//! paths): every object that can be downloaded ends byte-exact on disk, the ones that cannot
//! are reported, and no temporary file is ever left behind.
//!
//! How a request is retried, a body resumed or a corrupt object fetched again is proven by the
//! library against its fake bucket (`crates/s3fetch/src/transfer/tests.rs`, `retry.rs`,
//! `limit.rs`). These tests check what only a run of the binary over HTTP shows: the exit
//! code, the messages (the summary's retry line, each failed key on stderr) and the files.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use s3fetch_testkit::fixtures::tree;
use s3fetch_testkit::{FaultPlan, ServerOptions};

use crate::common::{run, wrapper, Run, TestEnv, S3FETCH};

/// Objects of three sizes: small (one buffered GET), medium (one streamed GET) and large
/// (ranged parts with the flags in [`s3fetch`]).
fn objects() -> BTreeMap<String, Vec<u8>> {
    let mut objects = BTreeMap::new();
    let body = |seed: u32, len: u32| -> Vec<u8> {
        (0..len)
            .map(|i| (i.wrapping_mul(2_654_435_761).wrapping_add(seed) >> 13) as u8)
            .collect()
    };
    for i in 0..120 {
        objects.insert(format!("small/{i:04}.bin"), body(i, 500 + i * 97));
    }
    for i in 0..12 {
        objects.insert(
            format!("medium/{i:02}.bin"),
            body(1000 + i, 300_000 + i * 20_011),
        );
    }
    for i in 0..3 {
        objects.insert(format!("large/{i}.bin"), body(2000 + i, 2_500_000 + i * 7));
    }
    objects
}

/// A server whose bucket `bkt` holds `objects`.
async fn env(objects: &BTreeMap<String, Vec<u8>>) -> TestEnv {
    env_with(objects, ServerOptions::default()).await
}

async fn env_with(objects: &BTreeMap<String, Vec<u8>>, options: ServerOptions) -> TestEnv {
    let env = TestEnv::start_with(options).await;
    env.server().create_bucket("bkt");
    env.server()
        .store()
        .put_objects(
            "bkt",
            objects.iter().map(|(k, v)| (k.as_str(), v.as_slice())),
        )
        .unwrap();
    env
}

/// The binary over the whole bucket into `dir`, with small parts, short timeouts and the
/// detailed summary.
fn command(env: &TestEnv, dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = env.command();
    cmd.args([
        "s3://bkt/",
        "--endpoint-url",
        &env.server().endpoint(),
        "--download-dir",
    ])
    .arg(dir)
    .args(["--part-size", "512KiB"])
    .args(["--idle-timeout", "1", "--progress", "detailed", "-c", "16"])
    .args(extra);
    for (flag, default) in [("--multipart-threshold", "1MiB"), ("--retries", "8")] {
        if !extra.contains(&flag) {
            cmd.args([flag, default]);
        }
    }
    cmd
}

/// Runs [`command`].
async fn s3fetch(env: &TestEnv, dir: &Path, extra: &[&str]) -> Run {
    run(command(env, dir, extra)).await
}

/// Keys named in `error:` lines on stderr: as `s3://bkt/KEY` (service errors) or quoted
/// (local errors, which name the key and the path).
fn failed_keys(stderr: &str, objects: &BTreeMap<String, Vec<u8>>) -> BTreeSet<String> {
    stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .flat_map(|l| {
            objects
                .keys()
                .filter(|k| l.contains(&format!("bkt/{k}")) || l.contains(&format!("{k:?}")))
                .cloned()
        })
        .collect()
}

/// What the summary's retry line says, `Retries: N (resumed downloads: R, throttled: T)`
/// (printed when there were any; zeros without it).
#[derive(Debug, Default)]
struct Recovered {
    /// N: every request tried again, resumed downloads included.
    retries: u64,
    resumed: u64,
    throttled: u64,
}

fn recovered(stdout: &str) -> Recovered {
    let Some(line) = stdout
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("Retries: "))
    else {
        return Recovered::default();
    };
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter(|n| !n.is_empty())
        .map(|n| n.parse().unwrap())
        .collect();
    let [retries, resumed, throttled] = numbers[..] else {
        panic!("not a retry line: {line}");
    };
    Recovered {
        retries,
        resumed,
        throttled,
    }
}

/// The count of [`Recovered`] that a fault raises when the run recovers from it.
#[derive(Clone, Copy, Debug)]
enum Recovery {
    Retried,
    Resumed,
    Throttled,
}

/// With the faults of `spec` (transient ones), the run exits 0, its summary says it
/// recovered (`recovery`), nothing is logged as an error, and every object is byte-exact.
async fn survives(spec: &str, recovery: Recovery) {
    let objects = objects();
    let env = env(&objects).await;
    env.server().set_faults(FaultPlan::parse(spec).unwrap());
    let out = s3fetch(&env, env.dir(), &[]).await;
    out.assert_success();
    let seen = recovered(&out.stdout());
    let count = match recovery {
        Recovery::Retried => seen.retries,
        Recovery::Resumed => seen.resumed,
        Recovery::Throttled => seen.throttled,
    };
    assert!(
        count > 0,
        "{spec}: the summary shows nothing {recovery:?} ({seen:?}; faults injected: {:?}):\n{}",
        env.server().fault_counts(),
        out.stdout()
    );
    // Recovered faults are counted, not logged as errors (by us or by the SDK beneath).
    let stderr = out.stderr();
    assert!(!stderr.contains("ERROR"), "{spec}: {stderr}");
    each_object_landed_or_failed(&env.tree(), &BTreeSet::new(), &objects);
}

/// With the faults of `spec`, the objects they break for good are each named on stderr
/// (with `needle`) and counted, the run exits 1, every other object is byte-exact, and the
/// broken ones leave no file. Returns the keys named.
async fn reports(spec: &str, needle: &str) -> BTreeSet<String> {
    let objects = objects();
    let env = env(&objects).await;
    env.server().set_faults(FaultPlan::parse(spec).unwrap());
    let out = s3fetch(&env, env.dir(), &[]).await;
    out.assert_exit(1).assert_stderr_contains(needle);
    let stderr = out.stderr();
    let failed = failed_keys(&stderr, &objects);
    assert!(!failed.is_empty(), "{spec}: {stderr}");
    out.assert_stderr_contains(&format!(
        "error: {} of {} objects failed",
        failed.len(),
        objects.len()
    ));
    each_object_landed_or_failed(&env.tree(), &failed, &objects);
    failed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_down_is_retried_with_backoff() {
    survives("slow_down=0.3@max=2,seed=1", Recovery::Throttled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn internal_errors_are_retried() {
    survives("internal_error=0.3@max=2,seed=2", Recovery::Retried).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_resets_are_retried() {
    survives("reset_before_head=0.3@max=2,seed=3", Recovery::Retried).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_cut_midway_are_resumed() {
    survives("cut_body_after=0.5:3000@max=2,seed=4", Recovery::Resumed).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stalled_bodies_are_abandoned_and_resumed() {
    // Stalls of two minutes: only `--idle-timeout 1` (see `s3fetch`) makes this finish soon.
    let started = std::time::Instant::now();
    survives("stall_body=0.1:120s:2000@max=1,seed=5", Recovery::Resumed).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(25),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_bodies_fail_verification_and_are_fetched_again() {
    survives("corrupt=0.3@max=1,seed=6", Recovery::Retried).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttled_listing_is_retried() {
    survives("list_slow_down=0.6@max=2,seed=7", Recovery::Throttled).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_deleted_after_listing_are_reported() {
    reports("not_found=0.05@sticky,seed=8", "NoSuchKey").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forbidden_keys_are_reported() {
    reports("forbidden=0.05@sticky,seed=9", "AccessDenied").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_corruption_is_never_renamed_into_place() {
    let failed = reports(
        "corrupt=1@key=small/0007.bin@key=medium/03.bin@key=large/1.bin,seed=10",
        "checksum mismatch",
    )
    .await;
    let expected: BTreeSet<String> = ["large/1.bin", "medium/03.bin", "small/0007.bin"]
        .map(String::from)
        .into();
    assert_eq!(failed, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_object_replaced_between_parts_is_reported() {
    let failed = reports(
        "etag_change=1@key=large/2.bin,seed=11",
        "PreconditionFailed",
    )
    .await;
    assert_eq!(failed, ["large/2.bin".to_owned()].into());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_that_ignores_range_is_detected() {
    // Some S3-compatible stores answer a Range request with the whole object.
    let objects = objects();
    let env = env_with(
        &objects,
        ServerOptions {
            range_returns_full_object: true,
            ..Default::default()
        },
    )
    .await;
    // Large objects fail with a clear message naming the cause; everything else arrives.
    s3fetch(&env, env.dir(), &[])
        .await
        .assert_exit(1)
        .assert_stderr_contains("may ignore Range requests");
    // With parts above every object's size, the same store works.
    let dir = tempfile::tempdir().unwrap();
    s3fetch(&env, dir.path(), &["--multipart-threshold", "1GiB"])
        .await
        .assert_success();
    each_object_landed_or_failed(&tree(dir.path()), &BTreeSet::new(), &objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_flag_sets_how_often_a_request_is_tried() {
    // One object whose GET fails twice, then succeeds: nothing else in the run succeeds
    // meanwhile (the listing, one page, is over before the GET), so `--retries` is how often
    // it is tried (a fresh server for each run: the server counts attempts per key). While
    // other requests succeed, a request persists longer: the engine's tests cover that.
    let objects: BTreeMap<String, Vec<u8>> = [("only.bin".to_owned(), vec![7u8; 70_000])].into();
    let plan = || FaultPlan::parse("internal_error=1@max=2@key=only.bin").unwrap();
    for (retries, code) in [("0", 1), ("1", 1), ("2", 0)] {
        let env = env(&objects).await;
        env.server().set_faults(plan());
        let out = s3fetch(
            &env,
            env.dir(),
            &["--retries", retries, "--list-concurrency", "1"],
        )
        .await;
        out.assert_exit(code);
        if code == 1 {
            out.assert_stderr_contains("only.bin");
            assert!(env.tree().is_empty());
        } else {
            assert_eq!(env.tree(), objects);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checksum_mode_disabled_skips_verification() {
    let objects = objects();
    let env = env(&objects).await;
    env.server()
        .set_faults(FaultPlan::parse("corrupt=1@key=small/0005.bin").unwrap());
    // Nothing checks the bytes: the corrupted object lands as received.
    s3fetch(&env, env.dir(), &["--checksum-mode", "disabled"])
        .await
        .assert_success();
    let landed = env.tree();
    assert_eq!(landed.len(), objects.len());
    assert_ne!(landed["small/0005.bin"], objects["small/0005.bin"]);
    assert_eq!(
        landed["small/0005.bin"].len(),
        objects["small/0005.bin"].len()
    );
}

/// A store that keeps no full-object checksums: objects are still verified against their
/// MD5 ETag — those fetched in ranged parts by reading the file back — so corruption is
/// caught in every size class: a transient one is fetched again, a persistent one is
/// reported and never renamed into place.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_stored_checksums_the_md5_etag_is_verified() {
    let objects = objects();
    let no_checksums = || ServerOptions {
        checksums: false,
        ..Default::default()
    };
    let env = env_with(&objects, no_checksums()).await;
    env.server()
        .set_faults(FaultPlan::parse("corrupt=0.3@max=1,seed=12").unwrap());
    let out = s3fetch(&env, env.dir(), &[]).await;
    out.assert_success();
    let seen = recovered(&out.stdout());
    assert!(seen.retries > 0, "fetched again: {}", out.stdout());
    each_object_landed_or_failed(&env.tree(), &BTreeSet::new(), &objects);

    let env = env_with(&objects, no_checksums()).await;
    let spec = "corrupt=1@key=small/0007.bin@key=medium/03.bin@key=large/1.bin";
    env.server().set_faults(FaultPlan::parse(spec).unwrap());
    let out = s3fetch(&env, env.dir(), &["--retries", "1"]).await;
    out.assert_exit(1);
    let stderr = out.stderr();
    let failed = failed_keys(&stderr, &objects);
    let expected = ["large/1.bin", "medium/03.bin", "small/0007.bin"].map(String::from);
    assert_eq!(failed, expected.into(), "{stderr}");
    let large = stderr.lines().find(|l| l.contains("large/1.bin")).unwrap();
    assert!(
        large.contains("checksum mismatch") && large.contains("MD5"),
        "{large}"
    );
    each_object_landed_or_failed(&env.tree(), &failed, &objects);
}

// Local trouble.

/// Every object either failed (reported, no file) or landed byte-exact; nothing else is on
/// disk, temporary files included.
fn each_object_landed_or_failed(
    landed: &BTreeMap<String, Vec<u8>>,
    failed: &BTreeSet<String>,
    objects: &BTreeMap<String, Vec<u8>>,
) {
    for (key, body) in objects {
        match failed.contains(key) {
            true => assert!(!landed.contains_key(key), "{key} failed but has a file"),
            false => assert!(landed.get(key) == Some(body), "{key} is missing or differs"),
        }
    }
    let stray: Vec<_> = landed
        .keys()
        .filter(|k| !objects.contains_key(*k))
        .collect();
    assert!(stray.is_empty(), "stray files: {stray:?}");
}

/// `cmd` run in its own user and mount namespace, with a tmpfs (`mount_options`) mounted on
/// `dir`; what the run left there is copied to `out` (the tmpfs goes with the namespace).
/// `None`, with a note, where this system allows no such namespace.
async fn on_tmpfs(cmd: Command, dir: &Path, mount_options: &str, out: &Path) -> Option<Run> {
    const NO_MOUNT: i32 = 99;
    let script = format!(
        r#"mount -t tmpfs -o "$1" tmpfs "$2" || exit {NO_MOUNT}
dir=$2 out=$3; shift 3
"$@"; code=$?
cp -a "$dir/." "$out/" && exit $code"#
    );
    let mut wrapped = wrapper("unshare", &cmd);
    wrapped
        .args(["-rm", "sh", "-c", &script, "sh", mount_options])
        .arg(dir)
        .arg(out)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    let output = run(wrapped).await;
    if output.code() == Some(NO_MOUNT) || output.stderr().contains("unshare: ") {
        eprintln!(
            "SKIPPED: this system allows no private tmpfs mount: {}",
            output.stderr()
        );
        return None;
    }
    Some(output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_fails_the_objects_that_do_not_fit_and_leaves_no_partial_file() {
    let objects = objects();
    let total: usize = objects.values().map(Vec::len).sum();
    let env = env(&objects).await;
    let (mount, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    // Room for about half of the bytes.
    let size = format!("size={}k", total / 2 / 1024);
    let cmd = command(&env, mount.path(), &[]);
    let Some(output) = on_tmpfs(cmd, mount.path(), &size, out.path()).await else {
        return;
    };
    output
        .assert_exit(1)
        .assert_stderr_contains("No space left on device");
    let stderr = output.stderr();
    // Errors name the destination, not the temporary file.
    assert!(!stderr.contains(".s3fetch-"), "{stderr}");
    let failed = failed_keys(&stderr, &objects);
    assert!(
        !failed.is_empty() && failed.len() < objects.len(),
        "{stderr}"
    );
    output.assert_stderr_contains(&format!(
        "error: {} of {} objects failed",
        failed.len(),
        objects.len()
    ));
    each_object_landed_or_failed(&tree(out.path()), &failed, &objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_download_dir_is_one_clear_error_before_any_request() {
    let objects = objects();
    let env = env(&objects).await;
    let (mount, out) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let cmd = command(&env, mount.path(), &[]);
    let Some(output) = on_tmpfs(cmd, mount.path(), "ro,size=1m", out.path()).await else {
        return;
    };
    output
        .assert_exit(2)
        .assert_stderr_contains("is not writable: Read-only file system");
    let stderr = output.stderr();
    assert_eq!(
        stderr.lines().filter(|l| l.starts_with("error: ")).count(),
        1,
        "{stderr}"
    );
    assert_eq!(env.server().request_counts().list, 0);
    assert!(tree(out.path()).is_empty());
    // A dry run writes nothing, so a read-only directory is fine for it.
    let cmd = command(&env, mount.path(), &["--dry-run"]);
    on_tmpfs(cmd, mount.path(), "ro,size=1m", out.path())
        .await
        .unwrap()
        .assert_success()
        .assert_stdout_contains("large/0.bin");
}

/// Running the binary as an unprivileged user: root writes whatever the permissions say.
/// As root, the binary is linked into a world-readable directory in `/tmp` (the build's own
/// directory may not be reachable by others) and run through `setpriv` as `nobody`; `home`
/// is a world-reachable place for download directories.
struct Unprivileged {
    home: tempfile::TempDir,
    binary: Option<PathBuf>,
}

impl Unprivileged {
    /// `None`, with a note, where root cannot run the binary as another user.
    fn new() -> Option<Self> {
        let home = tempfile::tempdir_in("/tmp").unwrap();
        chmod(home.path(), 0o755);
        if !rustix::process::geteuid().is_root() {
            return Some(Unprivileged { home, binary: None });
        }
        let binary = home.path().join("s3fetch");
        let built = Path::new(S3FETCH);
        std::fs::hard_link(built, &binary)
            .or_else(|_| std::fs::copy(built, &binary).map(|_| ()))
            .unwrap();
        let runs = Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(&binary)
            .arg("--version")
            .output()
            .is_ok_and(|out| out.status.success());
        if !runs {
            eprintln!("SKIPPED: running as root and `setpriv` cannot run the binary as nobody");
            return None;
        }
        Some(Unprivileged {
            home,
            binary: Some(binary),
        })
    }

    /// `cmd` run as the user; its `HOME` (the test's, which the user may not enter) becomes
    /// `home`.
    fn command(&self, cmd: Command) -> Command {
        let Some(binary) = &self.binary else {
            return cmd;
        };
        let mut wrapped = wrapper("setpriv", &cmd);
        wrapped
            .env("HOME", self.home.path())
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(binary)
            .args(cmd.get_args());
        wrapped
    }
}

fn chmod(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permission_denied_fails_each_object_it_blocks() {
    let objects = objects();
    let env = env(&objects).await;
    let Some(user) = Unprivileged::new() else {
        return;
    };
    let dir = user.home.path().join("downloads");
    std::fs::create_dir(&dir).unwrap();
    // A download directory the user may not write to: one error, before any request.
    chmod(&dir, 0o555);
    run(user.command(command(&env, &dir, &[])))
        .await
        .assert_exit(2)
        .assert_stderr_contains("is not writable: Permission denied");
    assert_eq!(env.server().request_counts().list, 0);
    // A writable download directory with one sub-directory that is not: only the objects
    // under it fail, each naming its key and path.
    chmod(&dir, 0o777);
    std::fs::create_dir(dir.join("medium")).unwrap();
    chmod(&dir.join("medium"), 0o555);
    let output = run(user.command(command(&env, &dir, &[]))).await;
    output.assert_exit(1);
    let stderr = output.stderr();
    let failed = failed_keys(&stderr, &objects);
    let medium: BTreeSet<String> = objects
        .keys()
        .filter(|k| k.starts_with("medium/"))
        .cloned()
        .collect();
    assert_eq!(failed, medium, "{stderr}");
    for line in stderr
        .lines()
        .filter(|l| l.starts_with("error: ") && l.contains("medium/"))
    {
        assert!(
            line.contains("Permission denied")
                && line.contains(&*dir.join("medium").to_string_lossy()),
            "{line}"
        );
    }
    each_object_landed_or_failed(&tree(&dir), &failed, &objects);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_long_names_and_paths_fail_alone() {
    let mut objects = objects();
    let segment = "s".repeat(200);
    let long_name = format!("names/{}", "n".repeat(256));
    let long_path = format!("paths/{segment}/{segment}/{segment}");
    objects.insert(long_name.clone(), b"name".to_vec());
    objects.insert(long_path.clone(), b"path".to_vec());
    let env = env(&objects).await;
    // A download directory 3,600 bytes long: the long key's path passes the OS limit (4,096
    // bytes on Linux), its directories and a temporary file in them do not.
    let root = tempfile::tempdir().unwrap();
    let mut dir = root.path().to_owned();
    while dir.as_os_str().len() < 3400 {
        dir.push("d".repeat(200));
    }
    dir.push("d".repeat(3599 - dir.as_os_str().len()));
    assert_eq!(dir.as_os_str().len(), 3600);
    std::fs::create_dir_all(&dir).unwrap();
    let output = s3fetch(&env, &dir, &[]).await;
    output.assert_exit(1);
    let stderr = output.stderr();
    let failed = failed_keys(&stderr, &objects);
    assert_eq!(
        failed,
        BTreeSet::from([long_name, long_path.clone()]),
        "{stderr}"
    );
    output.assert_stderr_contains("over the 255-byte file-name limit");
    let path_line = stderr.lines().find(|l| l.contains(&long_path)).unwrap();
    assert!(path_line.contains("File name too long"), "{path_line}");
    each_object_landed_or_failed(&tree(&dir), &failed, &objects);
}
