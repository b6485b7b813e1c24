"""Progress reporting when the output is not a terminal (log files, CI): counts, rate and ETA lines."""

from __future__ import annotations

import io
import re

from smarttrace.progress import PROGRESS_ENV, ProgressReporter, format_duration, progress_for

LINE = re.compile(r"^cam, track: (\d+)/(\d+) frames \((\d+)%\), ([\d.]+) frames/s, ETA (\d+):(\d\d), boxes (\d+)$")


class FakeClock:
    """Seconds under the test's control, so rate and ETA have exact expected values."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _lines(stream: io.StringIO) -> list[str]:
    return [line for line in stream.getvalue().splitlines() if line]


def test_non_tty_prints_a_line_every_tenth_with_counts_rate_and_eta():
    stream, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter("cam, track", total=200, stream=stream, tty=False, clock=clock)
    for frame in range(200):
        clock.now += 0.1  # 10 frames/s, so 200 frames take 20 s
        reporter.update(1, boxes=3 * (frame + 1))
    reporter.close()
    lines = _lines(stream)
    progress, final = lines[:-1], lines[-1]
    assert len(progress) == 9  # 10%, 20%, ... 90%; 100% is the final line
    first = LINE.match(progress[0])
    assert first, progress[0]
    done, total, percent, rate, eta_min, eta_s, boxes = first.groups()
    assert (int(done), int(total), int(percent), int(boxes)) == (20, 200, 10, 60)
    assert abs(float(rate) - 10.0) < 0.05
    assert int(eta_min) * 60 + int(eta_s) == 18  # 180 frames left at 10 frames/s
    percents = [int(LINE.match(line).group(3)) for line in progress]
    assert percents == [10, 20, 30, 40, 50, 60, 70, 80, 90]
    assert final == "cam, track: done, 200 frames in 0:20 (10.0 frames/s), boxes 600"


def test_non_tty_prints_at_least_every_ten_seconds_on_slow_work():
    stream, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter("cam, track", total=10_000, stream=stream, tty=False, clock=clock)
    for _ in range(100):  # 1 frame per 2 s: 200 s of work, only 1 % of the total
        clock.now += 2.0
        reporter.update(1)
    lines = _lines(stream)
    assert len(lines) == 20  # one every 10 s, although no 10 % step was crossed
    assert lines[-1].startswith("cam, track: 100/10000 frames (1%), 0.5 frames/s, ETA 5:30:00")


def test_unknown_total_gives_counts_and_rate_without_eta():
    stream, clock = io.StringIO(), FakeClock()
    reporter = ProgressReporter("cam, track", total=None, stream=stream, tty=False, clock=clock)
    for _ in range(30):
        clock.now += 1.0
        reporter.update(1)
    lines = _lines(stream)
    assert lines == ["cam, track: 10 frames, 1.0 frames/s", "cam, track: 20 frames, 1.0 frames/s",
                     "cam, track: 30 frames, 1.0 frames/s"]


def test_progress_is_silent_unless_the_cli_asked_for_it(monkeypatch, capsys):
    monkeypatch.delenv(PROGRESS_ENV, raising=False)
    reporter = progress_for("cam, track", 10)
    for _ in range(10):
        reporter.update(1)
    reporter.close()
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""


def test_durations_read_as_clock_times():
    assert [format_duration(s) for s in (0, 59.6, 61, 3600 + 62)] == ["0:00", "1:00", "1:01", "1:01:02"]


def test_library_prints_swallowed_in_parallel_camera_threads_leave_stdout_working():
    """Two cameras loading OSNet at once used to restore each other's StringIO: the CLI summary vanished."""
    import sys
    import threading
    import time

    from tasks.embed_reid import quiet_stdout

    real = sys.stdout

    def load_weights() -> None:
        with quiet_stdout():
            print("** per-layer notes from torchreid")
            time.sleep(0.05)

    threads = [threading.Thread(target=load_weights) for _ in range(4)]
    for thread in threads:
        thread.start()
        time.sleep(0.01)  # overlapping, entered and left in different orders
    for thread in threads:
        thread.join()
    assert sys.stdout is real
