"""The public API: :func:`download`, :func:`download_async` and :func:`iter_objects`.

Both hand the whole run to the Rust engine (``s3fetch._s3fetch``): listing and downloads run
on its threads with the GIL released; the calling thread only wakes up to run the callbacks
and to check for Ctrl-C.
"""

from __future__ import annotations

import os

from . import _s3fetch
from .exceptions import InvalidOptionError, InvalidUriError, NoCredentialsError, S3FetchError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Coroutine, Iterator, Sequence
    from typing import Any, ParamSpec, TypeVar

    P = ParamSpec("P")
    R = TypeVar("R")

    from ._progress import ProgressBar
    from ._protocol import ProgressProtocol
    from .s3 import DownloadResult, S3Object

# typing, asyncio, pathlib and the result class are imported where they are needed: a script
# that calls download() pays no start-up time for them.

__all__ = ["download", "download_async", "iter_objects"]

# Event kinds sent by the engine (see src/run.rs).
_FOUND, _DOWNLOADED, _FAILED, _SKIPPED = 0, 1, 2, 3

Failures = list[tuple[str, S3FetchError]]


def _same_signature(
    model: Callable[P, R],
) -> Callable[[Callable[..., Coroutine[Any, Any, R]]], Callable[P, Coroutine[Any, Any, R]]]:
    """Gives an async twin the signature of ``model`` (for ``help()``, IDEs and type checkers):
    the keywords are written once, on ``model``.
    """

    def give(twin: Callable[..., Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
        import inspect

        twin.__signature__ = inspect.signature(model)  # type: ignore[attr-defined]
        return twin

    return give


def _arguments(model: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    """Every parameter of ``model`` as a call with ``args`` and ``kwargs`` binds it, defaults
    included (what ``locals()`` is inside ``model``).
    """
    import inspect

    try:
        bound = inspect.signature(model).bind(*args, **kwargs)
    except TypeError as e:
        raise TypeError(f"{model.__name__}(): {e}") from None
    bound.apply_defaults()
    return dict(bound.arguments)


def download(
    s3_uri: str,
    download_dir: str | os.PathLike[str] = ".",
    *,
    regex: str | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    min_size: int | str | None = None,
    max_size: int | str | None = None,
    newer_than: str | datetime.date | datetime.timedelta | None = None,
    older_than: str | datetime.date | datetime.timedelta | None = None,
    include_archived: bool = False,
    shard: tuple[int, int] | str | None = None,
    shard_count: int | None = None,
    shard_by: str | None = None,
    plan: str | os.PathLike[str] | dict[str, Any] | None = None,
    inventory: str | None = None,
    threads: int | None = None,
    region: str | None = None,
    delimiter: str | None = None,
    dry_run: bool = False,
    client: Any = None,
    on_complete: Callable[[str], None] | None = None,
    progress_tracker: ProgressProtocol | None = None,
    progress: bool = False,
    on_result: Callable[[DownloadResult], None] | None = None,
    concurrent_downloads: int | None = None,
    list_concurrency: int | None = None,
    multipart_threshold: int | str | None = None,
    part_size: int | str | None = None,
    max_bandwidth: int | float | str | None = None,
    max_memory: int | str | None = None,
    retries: int | None = None,
    idle_timeout: float | datetime.timedelta | None = None,
    checksum_mode: str | None = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    no_sign_request: bool = False,
    force_path_style: bool = False,
    ca_bundle: str | os.PathLike[str] | None = None,
    request_payer: str | None = None,
    skip_existing: bool = False,
    sync: bool = False,
    compare: str | None = None,
    lock: bool | None = None,
    preserve_mtime: bool | None = None,
    resume: bool | None = None,
    failed_keys: str | os.PathLike[str] | None = None,
    keys_from: str | os.PathLike[str] | None = None,
    output: str | None = None,
) -> tuple[int, Failures]:
    r"""Download the objects under an S3 URI into a local directory.

    Listing and downloading run at once, on the Rust engine, with the GIL released: the
    first files arrive while the listing is still going.

    Args:
        s3_uri: ``s3://bucket``, ``s3://bucket/prefix`` or ``s3://bucket/exact/key``.
        download_dir: Where files go (``str`` or ``pathlib.Path``); it must exist and is
            never created. The URI's prefix is removed up to its last delimiter and the rest
            of each key becomes directories under it.
        regex: Only keys in which this pattern is found (searched in the full key). Python
            ``re`` look-around and backreferences work.
        include: Glob(s) a key must match, relative to the URI's prefix (``*`` within a
            path segment, ``**`` across them: ``"**/*.csv"``); keys no include matches are
            left out. Both ``regex`` and the globs must pass.
        exclude: Glob(s) that leave keys out, even when an include matches them (here the
            includes apply first, then the excludes; the CLI takes ``--include`` and
            ``--exclude`` in the order given, the last match deciding).
        min_size: Only objects of at least this size (bytes, or a size such as ``"1MiB"``),
            from the listing.
        max_size: Only objects of at most this size.
        newer_than: Only objects modified at or after this time: a timezone-aware
            ``datetime``, a ``date`` (midnight UTC), a ``timedelta`` (that long before now),
            or a str (``"2024-06-01"``, ``"2024-06-01T12:00:00Z"``, ``"7d"``, ``"12h"``).
        older_than: Only objects modified before this time (as for ``newer_than``).
        include_archived: Try objects in GLACIER or DEEP_ARCHIVE that are not restored
            instead of skipping them (``on_result`` gets them with ``skipped=True`` and
            ``skip_reason="archived"``); restored ones download either way.
        shard: ``(k, n)`` (or ``"k/n"``): take the k-th of n disjoint parts of the selected
            keys (``0 <= k < n``; a stable hash of each key decides, so the n parts'
            union is the whole selection), e.g. one per Ray or Dask task; ``"auto"``: k (and
            n) from an orchestrator's variables (Kubernetes ``JOB_COMPLETION_INDEX``, AWS
            Batch ``AWS_BATCH_JOB_ARRAY_INDEX``, Slurm ``SLURM_ARRAY_TASK_ID``).
        shard_count: n for ``shard="auto"`` where the orchestrator does not say it.
        shard_by: ``"hash"`` (the default without a plan) or ``"range"`` (the default with
            one): how ``shard`` deals out keys.
        plan: A plan of range shards from :func:`plan` (its dict, or the path of its JSON
            file, as ``s3fetch plan`` writes it): shard k then lists only its own range of
            keys, so n shards send about as many LIST requests as one run.
        inventory: ``s3://bucket/path/manifest.json`` of an S3 Inventory report (CSV): its
            objects are downloaded instead of listing the prefix (no LIST request); the
            URI's prefix and every filter still apply.
        threads: The original's name for ``concurrent_downloads``.
        region: AWS region; default: from the environment or profile, else ``us-east-1``.
        delimiter: Separates "directories" in keys; keys ending with it are skipped.
        dry_run: List only: nothing is written (no directories either); returns the number
            of matched keys, and ``on_complete`` is called for each.
        client: A boto3 S3 client: its endpoint, region, addressing style and credentials
            (refreshable ones included) are used, and the environment is ignored. The
            requests are made by s3fetch's engine, not by the client.
        on_complete: Called with each key once its file is complete on disk (never for a
            failed key). Every call has returned before ``download()`` returns; an exception
            it raises stops the run and propagates.
        progress_tracker: Gets ``increment_found()`` per selected key and
            ``increment_downloaded(size)`` per downloaded object (see
            :class:`s3fetch.utils.ProgressTracker`).
        progress: Show a progress bar while the run goes: tqdm's (in a terminal, or a
            widget in Jupyter) when tqdm is installed, else one line on stderr rewritten in
            place; files done of files found, and bytes. Works beside ``progress_tracker``.
        on_result: Called with a :class:`s3fetch.DownloadResult` per object, success or
            failure.
        concurrent_downloads: Downloads in flight at once (default 256).
        list_concurrency: List requests in flight at once (default 64; 1 lists page by page).
        multipart_threshold: Objects larger than this are fetched in ranged parts
            (bytes, or a size such as ``"16MiB"``; default 16 MiB).
        part_size: Size of each ranged part (default 8 MiB); an object of more than 16 parts
            gets larger ones (a 16th of it, a multiple of this, up to 64 MiB).
        max_bandwidth: Cap on the bytes per second of all downloads together: bytes per
            second, or a rate such as ``"100MB/s"``, ``"1Gbit/s"``, ``"500KiB/s"`` (default:
            no cap).
        max_memory: Cap on the bytes of response bodies held in memory at once (received,
            not yet written): bytes, or a size such as ``"256MiB"``; at least 16 MiB and one
            ``part_size``. Fewer requests run at once to stay under it (default: no cap;
            for :func:`iter_objects` 128 MiB, or a quarter of the cgroup's ``memory.max``).
        retries: Retries of each request after a transient failure (default 5).
        idle_timeout: Seconds a download may receive nothing before it is abandoned and
            resumed (default 30; after one second already if other downloads completed
            meanwhile).
        checksum_mode: ``"enabled"`` (default: verify every object against S3's checksum)
            or ``"disabled"``.
        endpoint_url: An S3-compatible endpoint, e.g. ``http://127.0.0.1:9000``.
        profile: A profile from ``~/.aws/config`` (SSO profiles too).
        no_sign_request: Unsigned requests, for public buckets.
        force_path_style: ``endpoint/bucket/key`` addressing (automatic for IP addresses and
            ``localhost``).
        ca_bundle: A PEM file of certificates to trust besides the system's (a private CA of
            an S3-compatible store); default: ``AWS_CA_BUNDLE``.
        request_payer: ``"requester"``: agree to pay for the requests of a requester-pays
            bucket (every request says so: listing, HEAD, GET, inventory); without it such a
            bucket answers every request with AccessDenied.
        skip_existing: Do not download an object whose file exists with the object's size.
        sync: Do not download an object whose file exists with the object's size and
            modification time (set by s3fetch to the object's LastModified): a second run
            fetches only what is new or changed. Skipped objects reach ``on_result`` with
            ``skipped=True``; ``on_complete`` and the tracker are not called for them.
        compare: What ``sync`` compares besides the size: ``"mtime"`` (default), or ``"etag"``
            — the modification time and the ETag s3fetch recorded on the file (an extended
            attribute, ``user.s3fetch.etag``, else the index ``.s3fetch-etags.jsonl`` in the
            download directory) when it downloaded it; ``"etag"`` implies ``sync``.
        lock: One download per node: hold an exclusive lock on ``download_dir`` for the run
            (the file ``.s3fetch.lock`` in it). Another run with ``lock=True`` into the same
            directory (another process or thread) waits, saying on ``sys.stderr`` for whom,
            then fetches only what the first did not (``lock`` implies ``sync``). A holder
            that dies releases the lock (default ``False``).
        preserve_mtime: Set each file's modification time to its object's LastModified
            (default ``True``).
        resume: Continue large downloads an interrupted run left unfinished (partial files
            and their journals in the download directory), and leave this run's unfinished
            ones resumable when it is interrupted (default ``True``). ``False``: such partial
            files are removed and none is kept.
        failed_keys: Write the key of every object that failed to this file, one per line,
            when the run ends (an empty file when none failed).
        keys_from: Download exactly the keys in this file (one per line; ``"-"`` reads
            standard input) instead of listing; they must be under the URI's prefix, and
            ``regex`` still applies. Each key's size comes from a HEAD request.
        output: ``"json"``: also write the run's JSON lines to standard output (the CLI's
            ``--output json``: one object per event and a summary; fields in docs/output.md).

    Returns:
        ``(success_count, failures)``: ``failures`` lists ``(key, exception)`` for every
        object that failed (exceptions from :mod:`s3fetch.exceptions`); ``[]`` when all
        succeeded. One object's failure never stops the others.

    Raises:
        S3FetchError: before any download for a bad URI (:class:`InvalidUriError`), regex
            (:class:`RegexError`), option (:class:`InvalidOptionError`) or download directory
            (:class:`DirectoryDoesNotExistError`); when the listing fails (missing bucket,
            credentials, permissions, an unreachable endpoint).
        KeyboardInterrupt: on Ctrl-C, once the run has stopped and its temporary files are
            removed.

    Example::

        from s3fetch import download

        success, failures = download("s3://my-bucket/data/", download_dir="./out",
                                     regex=r"\.csv$", threads=20)

    """
    run, dispatch, bar = _start(locals())
    try:
        return run.wait(dispatch)
    finally:
        if bar is not None:
            bar.close()


@_same_signature(download)
async def download_async(*args: Any, **kwargs: Any) -> tuple[int, Failures]:
    """:func:`download` as an awaitable, for asyncio code: same arguments, same result.

    The event loop is never blocked: the engine runs on its own threads, and the callbacks
    are called from one worker thread of the loop's default executor. Cancelling the task
    cancels the run; the cancellation propagates once its temporary files are removed.
    """
    import asyncio

    run, dispatch, bar = _start(_arguments(download, args, kwargs))
    loop = asyncio.get_running_loop()
    waiting = loop.run_in_executor(None, run.wait, dispatch)
    try:
        return await asyncio.shield(waiting)
    except asyncio.CancelledError:
        run.cancel()
        await asyncio.wait([waiting])
        raise
    finally:
        if bar is not None:
            bar.close()


def iter_objects(
    s3_uri: str,
    *,
    regex: str | None = None,
    include: str | Sequence[str] | None = None,
    exclude: str | Sequence[str] | None = None,
    min_size: int | str | None = None,
    max_size: int | str | None = None,
    newer_than: str | datetime.date | datetime.timedelta | None = None,
    older_than: str | datetime.date | datetime.timedelta | None = None,
    include_archived: bool = False,
    shard: tuple[int, int] | str | None = None,
    shard_count: int | None = None,
    shard_by: str | None = None,
    plan: str | os.PathLike[str] | dict[str, Any] | None = None,
    inventory: str | None = None,
    keys_from: str | os.PathLike[str] | None = None,
    delimiter: str | None = None,
    concurrent_downloads: int | None = None,
    multipart_threshold: int | str | None = None,
    part_size: int | str | None = None,
    max_bandwidth: int | str | None = None,
    max_memory: int | str | None = None,
    retries: int | None = None,
    idle_timeout: float | datetime.timedelta | None = None,
    checksum_mode: str | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    no_sign_request: bool = False,
    force_path_style: bool = False,
    ca_bundle: str | os.PathLike[str] | None = None,
    request_payer: str | None = None,
) -> Iterator[S3Object]:
    r"""Yield the objects under an S3 URI in key order, with their bytes, without files.

    The selection is :func:`download`'s (same keywords, same meaning), and so is which
    objects a URI names: ``s3://bucket/exact/key`` is that one object when it exists, a URI
    ending in ``/`` a prefix. Objects ahead of the one yielded download in parallel on the
    engine's threads, with the GIL released (a large one in ranged parts), within a memory
    cap (``max_memory``; default 128 MiB, or a quarter of the cgroup's ``memory.max`` when
    set); each is verified
    against its checksum before it is yielded. Breaking out of the loop (or closing the
    generator) cancels the rest: the listing and every request stop.

    Yields:
        :class:`s3fetch.S3Object` tuples ``(key, size, etag, last_modified, data)``:
        ``last_modified`` a timezone-aware ``datetime`` (or ``None``), ``data`` the object's
        ``bytes``.

    Raises:
        S3FetchError: a bad argument (before any request), the listing's failure, or an
            object's (:class:`ChecksumError`, :class:`DownloadError`, ...), which ends the
            iteration.

    Example::

        from s3fetch import iter_objects

        for obj in iter_objects("s3://my-bucket/shards/", include="*.tar"):
            consume(obj.key, obj.data)

    """
    import datetime as _datetime

    from .s3 import S3Object

    given = {name: value for name, value in locals().items() if name not in ("s3_uri", "_datetime", "S3Object")}
    args = _arguments(download, (_uri(s3_uri),), given)
    objects = _s3fetch.iter_objects(s3_uri, _options(args), _connection(args))
    utc = _datetime.timezone.utc
    try:
        for key, size, etag, modified, data in objects:
            when = None if modified is None else _datetime.datetime.fromtimestamp(modified, tz=utc)
            yield S3Object(key, size, etag, when, data)
    finally:
        objects.close()


def _start(
    args: dict[str, Any],
) -> tuple[_s3fetch.Run, Callable[[list[tuple[Any, ...]]], None] | None, ProgressBar | None]:
    """Checks the Python-side arguments (types, callables) and starts the run; with
    ``progress``, also the bar to close when it ends.
    """
    s3_uri = _uri(args["s3_uri"])
    download_dir = _path("download_dir", args["download_dir"] or ".") or "."

    on_complete, on_result, tracker = args["on_complete"], args["on_result"], args["progress_tracker"]
    for name, callback in (("on_complete", on_complete), ("on_result", on_result)):
        if callback is not None and not callable(callback):
            raise InvalidOptionError(f"{name} must be callable")
    if tracker is not None and not all(
        callable(getattr(tracker, method, None)) for method in ("increment_found", "increment_downloaded")
    ):
        raise InvalidOptionError("progress_tracker needs increment_found() and increment_downloaded(bytes_count)")
    if not isinstance(args["progress"], bool):
        raise InvalidOptionError(f"progress must be True or False, not {args['progress']!r}")

    options = _options(args)
    dry_run = bool(args["dry_run"])
    bar = None
    if args["progress"]:
        from ._progress import Both, ProgressBar

        bar = ProgressBar(dry_run)
        tracker = bar if tracker is None else Both(tracker, bar)
    run = _s3fetch.start(
        s3_uri,
        download_dir,
        options,
        _connection(args),
        want_found=tracker is not None,
        want_downloaded=any(x is not None for x in (on_complete, tracker, on_result)),
        want_failed=on_result is not None,
        want_skipped=on_result is not None,
    )
    if on_complete is None and tracker is None and on_result is None:
        return run, None, bar
    return run, _dispatcher(dry_run, on_complete, tracker, on_result), bar


def _uri(s3_uri: Any) -> str:
    if not isinstance(s3_uri, str):
        raise InvalidUriError(f"the S3 URI must be a str like 's3://bucket/prefix', not {type(s3_uri).__name__}")
    return s3_uri


def _options(args: dict[str, Any]) -> dict[str, Any]:
    """The run's options as the engine takes them: only those the caller gave, checked and
    normalized (sizes and times as text, paths as str).
    """
    threads, concurrent = args["threads"], args["concurrent_downloads"]
    if threads is not None and concurrent is not None and threads != concurrent:
        raise InvalidOptionError("pass threads or concurrent_downloads, not both")
    concurrency = concurrent if concurrent is not None else threads

    for name in ("checksum_mode", "compare", "delimiter"):
        if args[name] is not None and not isinstance(args[name], str):
            raise InvalidOptionError(f"{name} must be a str, not {type(args[name]).__name__}")
    if args["inventory"] is not None and not isinstance(args["inventory"], str):
        raise InvalidOptionError(f"inventory must be an s3:// URI str, not {type(args['inventory']).__name__}")

    if args["shard_by"] is not None and not isinstance(args["shard_by"], str):
        raise InvalidOptionError(f"shard_by must be 'hash' or 'range', not {args['shard_by']!r}")

    idle_timeout = args["idle_timeout"]
    if hasattr(idle_timeout, "total_seconds"):  # a datetime.timedelta
        idle_timeout = idle_timeout.total_seconds()

    # Only what the caller gave: everything else keeps the engine's default.
    given = {
        "regex": args["regex"],
        "include": _globs("include", args["include"]) or None,
        "exclude": _globs("exclude", args["exclude"]) or None,
        "min_size": _size(args["min_size"]),
        "max_size": _size(args["max_size"]),
        "newer_than": _time("newer_than", args["newer_than"]),
        "older_than": _time("older_than", args["older_than"]),
        "include_archived": args["include_archived"] or None,
        "shard": _shard(args["shard"]),
        "shard_count": _count("shard_count", args["shard_count"]),
        "shard_by": args["shard_by"],
        "plan": _plan_json(args["plan"]),
        "inventory": args["inventory"],
        "concurrent_downloads": _count("concurrent_downloads", concurrency),
        "list_concurrency": _count("list_concurrency", args["list_concurrency"]),
        "multipart_threshold": _size(args["multipart_threshold"]),
        "part_size": _size(args["part_size"]),
        "max_bandwidth": _rate(args["max_bandwidth"]),
        "max_memory": _size(args["max_memory"]),
        "retries": _count("retries", args["retries"]),
        "idle_timeout": _number("idle_timeout", idle_timeout),
        "checksum_mode": args["checksum_mode"],
        "delimiter": args["delimiter"],
        "dry_run": bool(args["dry_run"]) or None,
        "skip_existing": bool(args["skip_existing"]) or None,
        "sync": bool(args["sync"]) or None,
        "compare": args["compare"],
        "lock": None if args["lock"] is None else bool(args["lock"]),
        "preserve_mtime": None if args["preserve_mtime"] is None else bool(args["preserve_mtime"]),
        "resume": None if args["resume"] is None else bool(args["resume"]),
        "failed_keys": _path("failed_keys", args["failed_keys"]),
        "keys_from": _path("keys_from", args["keys_from"]),
        "request_payer": _payer(args["request_payer"]),
        "output": args["output"],
    }
    return {name: value for name, value in given.items() if value is not None}


def plan(
    s3_uri: str,
    shards: int,
    *,
    inventory: str | None = None,
    max_requests: int | None = None,
    retries: int | None = None,
    region: str | None = None,
    client: Any = None,
    endpoint_url: str | None = None,
    profile: str | None = None,
    no_sign_request: bool = False,
    force_path_style: bool = False,
    ca_bundle: str | os.PathLike[str] | None = None,
    request_payer: str | None = None,
) -> dict[str, Any]:
    """Compute the split points of ``shards`` range shards of ``s3_uri``.

    Each shard then runs ``download(s3_uri, ..., shard=(k, shards), plan=the_plan)`` and
    lists only its own range of keys. The plan comes from a few sampled listing pages (its
    ``estimated_objects`` are estimates) or, exactly and with no LIST request, from an S3
    Inventory report (``inventory="s3://bucket/path/manifest.json"``). It is a plain dict
    (JSON-ready, picklable): save it with ``json.dump`` to share it as ``s3fetch plan``
    would. Its ranges cover every possible key, so keys added later fall in one shard.

    Raises:
        InvalidUriError, InvalidOptionError: bad arguments, before any request.
        S3FetchError (a subclass): the listing or the inventory could not be read.

    """
    import json

    if not isinstance(s3_uri, str):
        raise InvalidUriError(f"the S3 URI must be a str like 's3://bucket/prefix', not {type(s3_uri).__name__}")
    if isinstance(shards, bool) or not isinstance(shards, int) or shards < 1:
        raise InvalidOptionError(f"shards must be an int of at least 1, not {shards!r}")
    if inventory is not None and not isinstance(inventory, str):
        raise InvalidOptionError(f"inventory must be an s3:// URI str, not {type(inventory).__name__}")
    given = {
        "inventory": inventory,
        "max_requests": _count("max_requests", max_requests),
        "retries": _count("retries", retries),
        "request_payer": _payer(request_payer),
    }
    options = {name: value for name, value in given.items() if value is not None}
    text = _s3fetch.plan(s3_uri, shards, options, _connection(locals()))
    result: dict[str, Any] = json.loads(text)
    return result


def _connection(args: dict[str, Any]) -> dict[str, Any]:
    """The keywords that say where S3 is and who we are there, for the engine."""
    connection: dict[str, Any] = {
        "region": args["region"],
        "endpoint_url": args["endpoint_url"],
        "profile": args["profile"],
        "no_sign_request": bool(args["no_sign_request"]),
        "force_path_style": True if args["force_path_style"] else None,
        "ca_bundle": None if args["ca_bundle"] is None else os.fspath(args["ca_bundle"]),
        "credentials": None,
        "ignore_environment": False,
    }
    if args["client"] is not None:
        explicit_ca = connection["ca_bundle"]
        connection.update(_from_boto3(args["client"]))
        connection["ca_bundle"] = explicit_ca or connection["ca_bundle"]
    return connection


def _payer(value: Any) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidOptionError(f"request_payer must be 'requester', not {value!r}")
    return value


def _plan_json(value: Any) -> str | None:
    """A plan as the engine reads it (JSON text): from :func:`plan`'s dict or a file."""
    import json

    if value is None:
        return None
    if isinstance(value, dict):
        try:
            return json.dumps(value)
        except (TypeError, ValueError) as e:
            raise InvalidOptionError(f"plan is not a plan dict: {e}") from None
    path = _path("plan", value)
    try:
        with open(path, encoding="utf-8") as file:  # type: ignore[arg-type]
            return file.read()
    except (OSError, UnicodeDecodeError) as e:
        raise InvalidOptionError(f"plan {path}: {e}") from None


def _dispatcher(
    dry_run: bool,
    on_complete: Callable[[str], None] | None,
    tracker: ProgressProtocol | None,
    on_result: Callable[[DownloadResult], None] | None,
) -> Callable[[list[tuple[Any, ...]]], None]:
    """The callbacks, called for a batch of engine events at a time."""
    from pathlib import Path

    from .s3 import DownloadResult

    def dispatch(events: list[tuple[Any, ...]]) -> None:
        for event in events:
            kind = event[0]
            if kind == _FOUND:
                if tracker is not None:
                    tracker.increment_found()
            elif kind == _DOWNLOADED:
                _, key, dest, size = event
                if tracker is not None and not dry_run:
                    tracker.increment_downloaded(size)
                if on_complete is not None:
                    on_complete(key)
                if on_result is not None:
                    on_result(DownloadResult(key, Path(dest), True, 0 if dry_run else size))
            elif kind == _SKIPPED:
                if on_result is not None:
                    _, key, dest, size, reason = event
                    on_result(DownloadResult(key, Path(dest), True, size, skipped=True, skip_reason=reason))
            elif on_result is not None:
                _, key, dest, error = event
                on_result(DownloadResult(key, None if dest is None else Path(dest), False, 0, error))

    return dispatch


def _path(name: str, value: Any) -> str | None:
    if value is None:
        return None
    try:
        path = os.fspath(value)
    except TypeError:
        raise InvalidOptionError(f"{name} must be a str or os.PathLike, not {type(value).__name__}") from None
    if not isinstance(path, str):
        raise InvalidOptionError(f"{name} must be a str path, not bytes")
    return path


def _count(name: str, value: Any) -> int | None:
    """Counts go to the engine, which checks their range (a negative one as 0)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"{name} must be an int, not {type(value).__name__}")
    if name == "retries" and value < 0:
        # The engine's count cannot be negative: say so here rather than run with 0.
        raise InvalidOptionError("retries must be at least 0")
    return max(value, 0)


def _size(value: Any) -> str | None:
    """Sizes go to the engine as given: ints as bytes, strings (``"8MiB"``) parsed there."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidOptionError(f"sizes must be an int or a str like '8MiB', not {type(value).__name__}")
    return str(value)


def _rate(value: Any) -> str | None:
    """Rates go to the engine as given: numbers as bytes per second, strings parsed there."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(
            f"max_bandwidth must be bytes per second or a str like '100MB/s', not {type(value).__name__}"
        )
    return repr(value) if isinstance(value, float) else str(value)


def _globs(name: str, value: Any) -> list[str]:
    """One glob or a sequence of them."""
    if value is None:
        return []
    globs = [value] if isinstance(value, str) else value
    try:
        globs = list(globs)
    except TypeError:
        raise InvalidOptionError(f"{name} must be a str or a list of str, not {type(value).__name__}") from None
    for glob in globs:
        if not isinstance(glob, str):
            raise InvalidOptionError(f"{name} must hold str globs, not {type(glob).__name__}")
    return globs


def _shard(value: Any) -> str | None:
    """``(k, n)``, ``"k/n"`` or ``"auto"``, as the engine's text (it checks the range)."""
    if value is None or isinstance(value, str):
        return value
    if (
        isinstance(value, tuple)
        and len(value) == 2
        and all(isinstance(x, int) and not isinstance(x, bool) for x in value)
    ):
        if min(value) < 0:
            raise InvalidOptionError(f"shard {value}: k and n cannot be negative")
        return f"{value[0]}/{value[1]}"
    raise InvalidOptionError(f"shard must be a (k, n) tuple of ints, 'k/n' or 'auto', not {value!r}")


def _time(name: str, value: Any) -> str | None:
    """Times go to the engine as text it parses (RFC 3339, a date, or an age such as "7d")."""
    import datetime

    if value is None or isinstance(value, str):
        return value
    if isinstance(value, datetime.timedelta):
        if value < datetime.timedelta(0):
            raise InvalidOptionError(f"{name}: a timedelta is an age before now and cannot be negative")
        return f"{int(value.total_seconds())}s"
    if isinstance(value, datetime.datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidOptionError(f"{name} must be a timezone-aware datetime (e.g. tzinfo=datetime.timezone.utc)")
        return value.isoformat()
    if isinstance(value, datetime.date):
        return value.isoformat()
    raise InvalidOptionError(f"{name} must be a datetime, date, timedelta or str, not {type(value).__name__}")


def _number(name: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidOptionError(f"{name} must be a number of seconds, not {type(value).__name__}")
    return float(value)


def _from_boto3(client: Any) -> dict[str, Any]:
    """What s3fetch takes from a boto3 S3 client: endpoint (unless it is AWS's own, which the
    engine derives from the region), region, addressing style and credentials; nothing from
    the environment then.
    """
    try:
        meta = client.meta
        endpoint = meta.endpoint_url
        region = meta.region_name
        config = meta.config
    except AttributeError:
        raise InvalidOptionError("client must be a boto3 S3 client (boto3.client('s3'))") from None
    addressing: str | None = (getattr(config, "s3", None) or {}).get("addressing_style")
    # botocore's `verify=`: a CA bundle's path (True/False keep the system's roots).
    verify = getattr(getattr(getattr(client, "_endpoint", None), "http_session", None), "_verify", None)
    settings: dict[str, Any] = {
        "ca_bundle": verify if isinstance(verify, str) else None,
        "region": region,
        "endpoint_url": None if _is_aws_endpoint(endpoint) else endpoint,
        "profile": None,
        "force_path_style": {"path": True, "virtual": False}.get(addressing or ""),
        "ignore_environment": True,
        "no_sign_request": False,
        "credentials": None,
    }
    import botocore  # present wherever a boto3 client is

    if getattr(config, "signature_version", None) is botocore.UNSIGNED:
        settings["no_sign_request"] = True
        return settings
    credentials = getattr(getattr(client, "_request_signer", None), "_credentials", None)
    if credentials is None:
        raise NoCredentialsError("the boto3 client has no credentials (and is not unsigned)")
    settings["credentials"] = credentials
    return settings


def _is_aws_endpoint(url: str | None) -> bool:
    if not url:
        return True
    host = url.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0].lower()
    return host.endswith(".amazonaws.com") or host.endswith(".amazonaws.com.cn")
