//! One job over several machines: `--shard K/N` and `--shard auto` (hash shards), `s3fetch
//! plan` and `--plan` (range shards).

use std::collections::BTreeSet;

use crate::common::run;
use crate::{expected_keys, with_data};

/// `--shard auto` with each orchestrator's variables: it says which it used, and the shards
/// of one job take every key once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shard_auto_reads_each_orchestrators_variables() {
    let env = with_data().await;
    let dry_run = |vars: Vec<(&str, String)>, args: &[&str]| {
        let mut cmd = env.command();
        cmd.args(["s3://bkt/data/", "--dry-run"])
            .args(args)
            .envs(vars);
        run(cmd)
    };
    let all = dry_run(Vec::new(), &[]).await.stdout_lines();
    assert_eq!(all.len(), 31);
    type Env = fn(u32) -> Vec<(&'static str, String)>;
    let orchestrators: [(&str, Env, &[&str]); 3] = [
        (
            "Kubernetes",
            |k| vec![("JOB_COMPLETION_INDEX", k.to_string())],
            &["--shard-count", "3"],
        ),
        (
            "AWS Batch",
            |k| {
                vec![
                    ("AWS_BATCH_JOB_ARRAY_INDEX", k.to_string()),
                    ("AWS_BATCH_JOB_ARRAY_SIZE", "3".into()),
                ]
            },
            &[],
        ),
        (
            "Slurm",
            |k| {
                vec![
                    ("SLURM_ARRAY_TASK_ID", (k + 1).to_string()),
                    ("SLURM_ARRAY_TASK_MIN", "1".into()),
                    ("SLURM_ARRAY_TASK_COUNT", "3".into()),
                ]
            },
            &[],
        ),
    ];
    for (name, vars, extra) in orchestrators {
        let mut union = BTreeSet::new();
        let mut total = 0;
        for k in 0..3 {
            let args: Vec<&str> = ["--shard", "auto"].iter().chain(extra).copied().collect();
            let out = dry_run(vars(k), &args).await;
            out.assert_success()
                .assert_stderr_contains(&format!("note: shard {k}/3 (from "))
                .assert_stderr_contains(name);
            let keys = out.stdout_lines();
            total += keys.len();
            union.extend(keys);
        }
        assert_eq!((total, &union), (31, &all), "{name}");
    }

    // The same split as --shard K/N, and the JSON summary says which shard it was.
    let out = dry_run(Vec::new(), &["--shard", "1/3", "--output", "json"]).await;
    let summary: serde_json::Value =
        serde_json::from_str(out.stdout().lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["shard"],
        serde_json::json!({"index": 1, "count": 3, "by": "hash"})
    );
    for (args, needle) in [
        (&["--shard", "auto"][..], "none of JOB_COMPLETION_INDEX"),
        (&["--shard", "3/3"][..], "K must be less than N"),
        (&["--shard", "x"][..], "is not K/N"),
    ] {
        dry_run(Vec::new(), args)
            .await
            .assert_exit(2)
            .assert_stderr_contains(needle);
    }
    dry_run(
        vec![("JOB_COMPLETION_INDEX", "0".into())],
        &["--shard", "auto"],
    )
    .await
    .assert_exit(2)
    .assert_stderr_contains("--shard-count");
}

/// `s3fetch plan` prints a plan; `--shard K/N --plan` shards by its key ranges (each key
/// once, the range in the JSON summary); the flags are checked against the plan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plan_and_range_shards() {
    let env = with_data().await;
    let work = tempfile::tempdir().unwrap();
    let plan_file = work.path().join("plan.json");
    let out = env.run(&["plan", "s3://bkt/data/", "--shards", "3"]).await;
    out.assert_success();
    let plan: serde_json::Value = serde_json::from_str(&out.stdout()).unwrap();
    assert_eq!(plan["shards"], 3);
    assert_eq!(plan["exact"], true, "one page: every key seen");
    assert_eq!(plan["list_requests"], 1);
    out.assert_stderr_contains("plan: 3 shards of s3://bkt/data/");
    std::fs::write(&plan_file, out.stdout()).unwrap();

    let mut union = BTreeSet::new();
    let mut total = 0;
    for k in 0..3 {
        let mut cmd = env.command();
        cmd.args(["s3://bkt/data/", "--dry-run", "--output", "json", "--plan"])
            .arg(&plan_file)
            .args(["--shard", &format!("{k}/3")]);
        let out = run(cmd).await;
        out.assert_success()
            .assert_stderr_contains(&format!("note: shard {k}/3: keys ("));
        let lines = out.json_lines();
        let summary = lines.last().unwrap();
        assert_eq!(summary["shard"]["by"], "range");
        assert_eq!(summary["shard"]["index"], k);
        let keys: Vec<String> = lines
            .iter()
            .filter(|l| l["event"] == "found")
            .map(|l| l["key"].as_str().unwrap().to_owned())
            .collect();
        assert!((10..=11).contains(&keys.len()), "{k}: {keys:?}");
        total += keys.len();
        union.extend(keys);
    }
    assert_eq!((total, union), (31, expected_keys()));

    let bad_plan = work.path().join("bad.json");
    std::fs::write(&bad_plan, "{\"splits\": []}").unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--shard", "0/4", "--plan", "P"], "--plan has 3 shards"),
        (&["--shard", "0/3", "--shard-by", "range"], "s3fetch plan"),
        (
            &["--shard", "0/3", "--shard-by", "hash", "--plan", "P"],
            "by hash",
        ),
        (
            &["--shard", "0/3", "--plan", "BAD"],
            "is not an s3fetch plan",
        ),
        (
            &["--shard", "0/3", "--plan", "/nonexistent/plan.json"],
            "--plan /nonexistent",
        ),
        (&["--plan", "P"], "--shard"),
    ];
    for (args, says) in cases {
        let mut cmd = env.command();
        cmd.args(["s3://bkt/data/", "--dry-run"]);
        for arg in args {
            match *arg {
                "P" => cmd.arg(&plan_file),
                "BAD" => cmd.arg(&bad_plan),
                _ => cmd.arg(arg),
            };
        }
        run(cmd).await.assert_exit(2).assert_stderr_contains(says);
    }
    // Another prefix than the plan's; `plan` without --shards.
    let mut cmd = env.command();
    cmd.args(["s3://bkt/data/sub/", "--shard", "0/3", "--plan"])
        .arg(&plan_file);
    run(cmd)
        .await
        .assert_exit(2)
        .assert_stderr_contains("was made for s3://bkt/data/");
    env.run(&["plan", "s3://bkt/data/"])
        .await
        .assert_exit(2)
        .assert_stderr_contains("--shards");
}
