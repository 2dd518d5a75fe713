"""The orchestrator examples in ``examples/``, checked as far as this machine allows: each
file parses, its shard count matches its array size, and its very command runs — once per
array index, with the orchestrator's variables set as the orchestrator would set them,
against the test kit's server — so that the shards are disjoint and their union is exact.
The Dask recipe runs on a local Dask cluster."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path

from conftest import SAMPLE, Server, temporary_files, tree

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
# What the examples select under s3://bkt/data/ of the sample: every file but the marker.
WANTED = {k.removeprefix("data/"): v for k, v in SAMPLE.items() if k.startswith("data/") and not k.endswith("/")}


def s3fetch_command() -> str:
    script = shutil.which("s3fetch", path=os.path.dirname(sys.executable))
    assert script, "the wheel installs the s3fetch command"
    return script


def stand_in(tmp_path: Path, server: Server) -> Path:
    """A directory holding an ``s3fetch`` that runs the real one on the test kit's bucket:
    the examples' ``s3://my-bucket/...`` becomes ``s3://bkt/data/``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "s3fetch"
    wrapper.write_text(
        "#!/usr/bin/env bash\n"
        "args=()\n"
        'for a in "$@"; do case $a in s3://my-bucket/*) a=s3://bkt/data/;; esac; args+=("$a"); done\n'
        f'exec {s3fetch_command()} "${{args[@]}}" --endpoint-url {server.endpoint}\n'
    )
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return bin_dir


def run_shards(argv_env: list[tuple[list[str], dict[str, str]]], path: Path) -> list[dict[str, object]]:
    """Runs each (argv, extra environment) and returns each run's JSON summary line."""
    summaries = []
    for argv, extra in argv_env:
        env = {**os.environ, "PATH": f"{path}:{os.environ['PATH']}", **extra}
        out = subprocess.run(argv, capture_output=True, text=True, timeout=120, env=env)
        assert out.returncode == 0, (argv, extra, out.stderr)
        assert "note: shard " in out.stderr, out.stderr
        summaries.append(json.loads(out.stdout.splitlines()[-1]))
    return summaries


def check_job(summaries: list[dict[str, object]], count: int, dest: Path) -> None:
    shards = [s["shard"] for s in summaries]
    assert [(s["index"], s["count"]) for s in shards] == [(k, count) for k in range(count)]  # type: ignore[index]
    assert all(s["event"] == "summary" and s["failed"] == 0 for s in summaries)
    assert sum(int(s["downloaded"]) for s in summaries) == len(WANTED), "each key by one shard"  # type: ignore[call-overload]
    assert tree(dest) == WANTED


def test_kubernetes_indexed_job(sample: Server, tmp_path: Path) -> None:
    import yaml  # installed with the test tools (scripts/python-tests.sh)

    job = yaml.safe_load((EXAMPLES / "kubernetes" / "job.yaml").read_text())
    assert (job["kind"], job["spec"]["completionMode"]) == ("Job", "Indexed")
    completions = job["spec"]["completions"]
    container = job["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert int(env["S3FETCH_SHARD_COUNT"]) == completions
    args = container["args"]
    assert "--shard" in args and args[args.index("--shard") + 1] == "auto"
    mount = container["volumeMounts"][0]["mountPath"]
    dest = tmp_path / "data"
    dest.mkdir()
    argv = ["s3fetch", *[str(dest) if a == mount else a for a in args]]
    runs = [(argv, {**env, "JOB_COMPLETION_INDEX": str(k)}) for k in range(completions)]
    check_job(run_shards(runs, stand_in(tmp_path, sample)), completions, dest)


def test_kubernetes_range_shards(sample: Server, tmp_path: Path) -> None:
    """The plan step of the manifest's comment, then each pod with the plan mounted."""
    import yaml

    text = (EXAMPLES / "kubernetes" / "job-range.yaml").read_text()
    job = yaml.safe_load(text)
    completions = job["spec"]["completions"]
    plan_line = next(line for line in text.splitlines() if "s3fetch plan" in line)
    plan_argv = plan_line.lstrip("# ").split(">")[0].split()
    assert plan_argv[plan_argv.index("--shards") + 1] == str(completions)
    bin_dir = stand_in(tmp_path, sample)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    made = subprocess.run(plan_argv, capture_output=True, text=True, timeout=120, env=env, check=True)
    spec = job["spec"]["template"]["spec"]
    container = spec["containers"][0]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert {v["name"] for v in spec["volumes"]} == set(mounts)
    plan_dir, dest = tmp_path / "plan", tmp_path / "data"
    plan_dir.mkdir()
    dest.mkdir()
    (plan_dir / "plan.json").write_text(made.stdout)
    local = {mounts["data"]: str(dest), mounts["plan"]: str(plan_dir)}

    def localise(arg: str) -> str:
        for mount, path in local.items():
            if arg == mount or arg.startswith(mount + "/"):
                return path + arg[len(mount) :]
        return arg

    argv = ["s3fetch", *[localise(a) for a in container["args"]]]
    pod_env = {e["name"]: e["value"] for e in container["env"]}
    runs = [(argv, {**pod_env, "JOB_COMPLETION_INDEX": str(k)}) for k in range(completions)]
    summaries = run_shards(runs, bin_dir)
    assert all(s["shard"]["by"] == "range" for s in summaries)  # type: ignore[index]
    check_job(summaries, completions, dest)


def test_aws_batch_array_job(sample: Server, tmp_path: Path) -> None:
    definition = json.loads((EXAMPLES / "aws-batch" / "job-definition.json").read_text())
    submit = json.loads((EXAMPLES / "aws-batch" / "submit-job.json").read_text())
    assert submit["jobDefinition"] == definition["jobDefinitionName"]
    size = submit["arrayProperties"]["size"]
    container = definition["containerProperties"]
    env = {e["name"]: e["value"] for e in container["environment"]}
    assert int(env["S3FETCH_SHARD_COUNT"]) == size
    dest = tmp_path / "data"
    dest.mkdir()
    argv = [str(dest) if a == "/data" else a for a in container["command"]]
    assert argv[0] == "s3fetch" and "auto" in argv
    runs = [(argv, {**env, "AWS_BATCH_JOB_ARRAY_INDEX": str(k)}) for k in range(size)]
    check_job(run_shards(runs, stand_in(tmp_path, sample)), size, dest)


def test_slurm_job_array(sample: Server, tmp_path: Path) -> None:
    script = EXAMPLES / "slurm" / "fetch.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    first, last = map(int, re.search(r"^#SBATCH --array=(\d+)-(\d+)$", text, re.M).groups())  # type: ignore[union-attr]
    shards = int(re.search(r"^SHARDS=(\d+)", text, re.M).group(1))  # type: ignore[union-attr]
    assert shards == last - first + 1
    dest = tmp_path / "data"
    runs = [
        (
            ["bash", str(script)],
            {
                "SLURM_ARRAY_TASK_ID": str(task),
                "SLURM_ARRAY_TASK_MIN": str(first),
                "SLURM_ARRAY_TASK_COUNT": str(shards),
                "DEST": str(dest),
            },
        )
        for task in range(first, last + 1)
    ]
    check_job(run_shards(runs, stand_in(tmp_path, sample)), shards, dest)


def test_dask_recipe_on_a_local_cluster(sample: Server, tmp_path: Path) -> None:
    import distributed  # installed with the test tools (scripts/python-tests.sh)

    spec = importlib.util.spec_from_file_location("fetch_sharded", EXAMPLES / "dask" / "fetch_sharded.py")
    assert spec and spec.loader
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    dest = tmp_path / "data"
    dest.mkdir()
    # Worker processes, so that results and exceptions travel pickled, as on a cluster.
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        with distributed.Client(cluster) as client:
            client.upload_file(str(EXAMPLES / "dask" / "fetch_sharded.py"))
            for by in ("hash", "range"):
                dest = tmp_path / by
                dest.mkdir()
                results = recipe.fetch_sharded(
                    client, "s3://bkt/data/", str(dest), 4, by=by, endpoint_url=sample.endpoint
                )
                assert [failures for _, failures in results] == [[], [], [], []]
                assert sum(success for success, _ in results) == len(WANTED), "each key by one shard"
                assert tree(dest) == WANTED


def test_ray_recipe_on_a_local_cluster(sample: Server, tmp_path: Path) -> None:
    import ray  # installed with the test tools (scripts/python-tests.sh)

    spec = importlib.util.spec_from_file_location("stage", EXAMPLES / "ray" / "stage.py")
    assert spec and spec.loader
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    # One local node of two CPUs; its workers inherit the test server's credentials from
    # this process's environment.
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        dest = tmp_path / "sharded"
        dest.mkdir()
        before = sample.requests().get("ListObjectsV2", 0)
        results = recipe.stage_sharded("s3://bkt/data/", str(dest), 4, endpoint_url=sample.endpoint)
        assert [failures for _, failures in results] == [[], [], [], []]
        assert sum(success for success, _ in results) == len(WANTED), "each key by one shard"
        assert tree(dest) == WANTED
        # Range shards: the plan's requests and one listing per shard, not four whole listings.
        assert sample.requests().get("ListObjectsV2", 0) - before <= 4 + 4

        dest = tmp_path / "per-node"
        dest.mkdir()
        gets = sample.requests().get("GetObject", 0)
        staged = recipe.stage_per_node("s3://bkt/data/", str(dest), tasks_per_node=4, endpoint_url=sample.endpoint)
        assert len(staged) == 4 and all(failures == [] for _, _, failures in staged)
        assert len({node for node, _, _ in staged}) == 1, "one node here"
        assert tree(dest) == WANTED
        assert sample.requests().get("GetObject", 0) - gets == len(WANTED), "one download per node"
        assert temporary_files(dest) == []
    finally:
        ray.shutdown()
