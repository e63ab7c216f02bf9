"""The side-by-side benchmark's cheap parts: the Channels 4 project it renders, its arithmetic
(medians, ratios, CPU per unit), its HTTP response reader and its argument checks. Nothing
here creates a venv, starts a stack or opens a socket."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from benchmarks import side_by_side
from benchmarks.scenarios import Params, _read_response, payload
from benchmarks.stacks import PROJECT_FILES, TEMPLATES, cpu_seconds, render_project

REDIS_URL = "redis://127.0.0.1:45678/0"


def test_every_rendered_project_file_is_valid_python() -> None:
    sources = render_project(REDIS_URL)
    assert set(sources) == {"__init__.py", *PROJECT_FILES}
    for name, source in sources.items():
        compile(source, f"bench4/{name}", "exec")
        assert "$" not in source, f"{name} kept a placeholder"


def test_rendered_settings_put_the_layer_on_the_given_redis() -> None:
    settings: dict = {}
    exec(render_project(REDIS_URL)["settings.py"], settings)
    layer = settings["CHANNEL_LAYERS"]["default"]
    assert layer["BACKEND"] == "channels_redis.core.RedisChannelLayer"
    assert layer["CONFIG"]["hosts"] == [{"address": REDIS_URL}]
    assert settings["ASGI_APPLICATION"] == "bench4.asgi.application"


def test_rendered_project_routes_the_three_endpoints_and_the_group() -> None:
    sources = render_project(REDIS_URL)
    assert 'path("ws/echo/", EchoConsumer.as_asgi())' in sources["asgi.py"]
    assert 'path("ws/group/", BroadcastConsumer.as_asgi())' in sources["asgi.py"]
    assert 'path("hello", hello)' in sources["urls.py"]
    assert "GROUP = 'bench'" in sources["consumers.py"]


def test_requirements_pin_every_package_exactly() -> None:
    lines = [line.split("#")[0].strip()
             for line in (TEMPLATES / "requirements.txt").read_text().splitlines()]
    pins = dict(line.split("==") for line in lines if line)
    assert set(pins) == {"channels", "daphne", "channels_redis", "Django", "redis"}
    assert pins["channels"].startswith("4.") and pins["Django"].startswith("5.2")


def test_summarize_takes_the_median_of_each_figure_and_skips_unmeasured() -> None:
    runs = [
        {"rate": 100.0, "p99_ms": 9.0, "cpu_ms_per_unit": 0.5, "lost": 0, "units": 10},
        {"rate": 300.0, "p99_ms": 3.0, "cpu_ms_per_unit": None, "lost": 2, "units": 30},
        {"rate": 200.0, "p99_ms": 5.0, "cpu_ms_per_unit": 0.7, "lost": 0, "units": 20},
    ]
    assert side_by_side.summarize(runs) == {
        "rate": 200.0, "p99_ms": 5.0, "cpu_ms_per_unit": 0.6, "lost": 0}


def test_compare_divides_ours_by_channels4_and_refuses_a_zero_baseline() -> None:
    ours = {"rate": 300.0, "p99_ms": 10.0, "lost": 0, "cpu_ms_per_unit": None}
    channels4 = {"rate": 200.0, "p99_ms": 40.0, "lost": 0, "cpu_ms_per_unit": 1.0}
    assert side_by_side.compare(ours, channels4) == {
        "rate": 1.5, "p99_ms": 0.25, "lost": None, "cpu_ms_per_unit": None}


def test_with_cpu_bills_stack_and_redis_per_unit() -> None:
    before = {"redis": 1.0, "ours:0": 10.0, "ours:1": 5.0}
    after = {"redis": 1.5, "ours:0": 12.0, "ours:1": 6.5}
    run = side_by_side.with_cpu({"rate": 1.0, "units": 1000}, before, after)
    assert run["server_cpu_s"] == 3.5
    assert run["redis_cpu_s"] == 0.5
    assert run["cpu_ms_per_unit"] == 4.0  # (3.5 + 0.5) s over 1000 units
    assert side_by_side.with_cpu({"units": 0}, before, after)["cpu_ms_per_unit"] is None


def test_markdown_row_shows_both_stacks_and_their_ratio() -> None:
    summaries = {
        ("ws_echo", "ours"): {"rate": 3000.0, "p99_ms": 20.0, "cpu_ms_per_unit": 0.3,
                              "lost": 0},
        ("ws_echo", "channels4"): {"rate": 2000.0, "p99_ms": 40.0, "cpu_ms_per_unit": 0.6,
                                   "lost": 0},
    }
    table = side_by_side.markdown(summaries, Params(conns=50, msgs=200), reps=3)
    row = next(line for line in table.splitlines() if line.startswith("| WebSocket echo"))
    assert "50 sockets × 200 msgs" in row
    assert "3,000 /s, 20.0 ms, 0.300 ms, 0" in row
    assert "2,000 /s, 40.0 ms, 0.600 ms, 0" in row
    assert row.endswith("| 1.50× / 0.50× / 0.50× |")
    assert not any(line.startswith("| HTTP") for line in table.splitlines())


def test_cpu_seconds_of_this_process_grows_with_work() -> None:
    before = cpu_seconds(os.getpid())
    deadline = time.process_time() + 0.1
    while time.process_time() < deadline:
        pass
    assert cpu_seconds(os.getpid()) - before >= 0.05


def test_cpu_seconds_of_a_finished_process_is_zero() -> None:
    # Pid numbers are at most 2**22 on Linux: this one cannot exist.
    assert cpu_seconds(2**22 + 1) == 0.0


def test_payload_keeps_its_tag_and_pads_to_size() -> None:
    assert payload("3:7:", 10) == "3:7:xxxxxx"
    assert payload("a-long-tag:", 4) == "a-long-tag:"


def _parse(raw: bytes) -> tuple[int, bytes]:
    async def parse() -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await _read_response(reader)

    return asyncio.run(parse())


def test_response_reader_handles_content_length_and_chunks() -> None:
    assert _parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello") == (200, b"hello")
    chunked = (b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nHello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n")
    assert _parse(chunked) == (404, b"Hello, world")


def test_response_reader_rejects_a_body_of_unknown_length() -> None:
    with pytest.raises(RuntimeError, match="neither Content-Length nor chunked"):
        _parse(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nhello")


@pytest.mark.parametrize("argv, message", [
    (["--reps", "0"], "--reps must be between"),
    (["--conns", "-3"], "--conns must be between"),
    (["--http-duration", "600"], "--http-duration must be between"),
])
def test_out_of_range_arguments_stop_before_anything_starts(
        argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        side_by_side.main(argv)
    assert exited.value.code == 2
    assert message in capsys.readouterr().err
