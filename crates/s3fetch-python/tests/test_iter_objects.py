"""iter_objects(): objects in key order with their bytes, the download's selection, errors as
exceptions, and a loop broken early that stops the requests. An optional PyTorch test builds
the IterableDataset of docs/python.md (skipped without torch)."""

from __future__ import annotations

import datetime
import inspect
from pathlib import Path

import pytest
import s3fetch
from conftest import SAMPLE, Server, start_server
from s3fetch import S3Object, download, iter_objects
from s3fetch.exceptions import ChecksumError, InvalidOptionError, InvalidUriError


def test_yields_the_prefix_in_key_order_with_the_bytes(sample: Server) -> None:
    got = list(iter_objects("s3://bkt/data/", endpoint_url=sample.endpoint))
    expected = sorted((k, v) for k, v in SAMPLE.items() if k.startswith("data/") and not k.endswith("/"))
    assert [(o.key, o.data) for o in got] == expected
    for obj in got:
        assert isinstance(obj, S3Object)
        assert obj.size == len(obj.data)
        assert obj.etag and obj.etag.startswith('"')
        assert isinstance(obj.last_modified, datetime.datetime)
        assert obj.last_modified.tzinfo is not None
    key, size, _etag, _modified, data = got[0]  # a plain tuple too
    assert (key, size) == (got[0].key, len(data))


def test_the_selection_keywords_are_the_downloads(sample: Server) -> None:
    keys = [
        o.key for o in iter_objects("s3://bkt/", regex=r"\.json$", exclude="data/tmp/**", endpoint_url=sample.endpoint)
    ]
    assert keys == ["data/2023/d.json", "data/2024/a.json", "data/2024/sub/c.json", "other/f.json"]
    download_keywords = set(inspect.signature(download).parameters)
    for name in inspect.signature(iter_objects).parameters:
        assert name in download_keywords, f"{name} is not a keyword of download()"


def test_an_exact_key_is_one_object(sample: Server) -> None:
    got = list(iter_objects("s3://bkt/data/2024/sub/c.json", endpoint_url=sample.endpoint))
    assert [(o.key, o.data) for o in got] == [("data/2024/sub/c.json", b'{"c": 3}')]


def test_a_large_object_comes_whole_from_ranged_parts(server: Server) -> None:
    body = bytes(range(256)) * 4096 * 3  # 3 MiB
    server.bucket("big", {"a/blob": body, "a/small": b"x"})
    got = list(
        iter_objects("s3://big/a/", part_size="64KiB", multipart_threshold="256KiB", endpoint_url=server.endpoint)
    )
    assert [(o.key, o.data == body if o.size > 1 else o.data) for o in got] == [("a/blob", True), ("a/small", b"x")]
    assert server.requests().get("GetObject") == 48 + 1


def test_a_large_object_under_max_memory(server: Server) -> None:
    body = bytes(range(256)) * 4096 * 40  # 40 MiB, under a cap of 16 MiB
    server.bucket("big", {"blob": body})
    for cap in (16 << 20, "16MiB"):
        got = list(iter_objects("s3://big/blob", part_size="2MiB", max_memory=cap, endpoint_url=server.endpoint))
        assert [(o.key, o.data == body) for o in got] == [("blob", True)]


def test_breaking_the_loop_stops_the_requests(server: Server) -> None:
    server.bucket("many", {f"k/{i:04}": bytes([i % 256]) * 1000 for i in range(300)})
    objects = iter_objects("s3://many/k/", concurrent_downloads=4, endpoint_url=server.endpoint)
    first = next(objects)
    assert first.key == "k/0000"
    objects.close()
    gets = server.requests().get("GetObject", 0)
    assert gets < 300, f"{gets} GETs for one object taken"
    # At most the 4 in flight when it closed may still arrive; nothing new starts.
    again = server.requests().get("GetObject", 0)
    assert again <= gets + 4, f"requests went on after close(): {gets} then {again}"


def test_a_corrupt_object_raises_a_checksum_error(tmp_path: Path, aws_env: None) -> None:
    server = start_server(tmp_path, "--faults", "corrupt=1@key=c/bad")
    try:
        server.bucket("crp", {"c/bad": b"some bytes", "c/good": b"fine"})
        with pytest.raises(ChecksumError) as raised:
            list(iter_objects("s3://crp/c/", endpoint_url=server.endpoint))
        assert "c/bad" in str(raised.value)
    finally:
        server.stop()


def test_bad_arguments_raise_before_any_request(sample: Server) -> None:
    with pytest.raises(InvalidUriError):
        next(iter_objects("bkt/data", endpoint_url=sample.endpoint))
    with pytest.raises(InvalidOptionError):
        next(iter_objects("s3://bkt/", part_size="0", endpoint_url=sample.endpoint))
    with pytest.raises(InvalidOptionError, match="max_memory"):
        next(iter_objects("s3://bkt/", max_memory="1MiB", endpoint_url=sample.endpoint))
    assert s3fetch.iter_objects is iter_objects


def test_a_pytorch_iterable_dataset(sample: Server) -> None:
    torch = pytest.importorskip("torch")
    from torch.utils.data import DataLoader, IterableDataset

    class S3Dataset(IterableDataset):  # type: ignore[misc,type-arg]
        def __init__(self, uri: str, **selection: object) -> None:
            self.uri, self.selection = uri, selection

        def __iter__(self):  # type: ignore[no-untyped-def]
            info = torch.utils.data.get_worker_info()
            shard = (info.id, info.num_workers) if info else None
            for obj in iter_objects(self.uri, shard=shard, **self.selection):  # type: ignore[arg-type]
                yield obj.key, torch.frombuffer(bytearray(obj.data), dtype=torch.uint8)

    loader = DataLoader(S3Dataset("s3://bkt/data/", endpoint_url=sample.endpoint), batch_size=None)
    keys = sorted(key for key, _ in loader)
    assert keys == sorted(k for k in SAMPLE if k.startswith("data/") and not k.endswith("/"))
