"""Shared test configuration: markers, and in CI a skipped integration test fails the run."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import settings

from tests.budget import MUTATION

ROOT = Path(__file__).resolve().parent.parent
REAL_DATA = ROOT / "tests" / "data"  # slices of the real datasets (tests/data/README.md)
EXAMPLES = ROOT / "contracts" / "examples"

_skipped_integration: list[str] = []

# Under mutation testing (scripts/mutation): the same examples every run (tests/budget.py).
settings.register_profile("mutation", derandomize=True, database=None)
if MUTATION:
    settings.load_profile("mutation")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/integration/" in item.nodeid.replace(os.sep, "/"):
            item.add_marker(pytest.mark.integration)
    if MUTATION:
        items[:] = _fastest_first(items)


def _fastest_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """Under mutation testing, run the quickest tests first (mutmut stops at the first failure).

    mutmut hands each mutant the tests that cover it in no particular order and runs them with
    ``-x``; a mutant the first quick test kills then costs seconds instead of the slow tests
    before it. The durations are mutmut's own, from its first run of the selection.
    """
    stats = Path("mutmut-stats.json")
    if not stats.exists():
        return items
    duration = json.loads(stats.read_text()).get("duration_by_test", {})
    # A test mutmut has not timed yet is new, likely written for a survivor: first.
    return sorted(items, key=lambda item: duration.get(item.nodeid, 0.0))


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.skipped and "integration" in report.keywords:
        _skipped_integration.append(report.nodeid)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes") and _skipped_integration:
        session.config.get_terminal_writer().line(
            f"CI: {len(_skipped_integration)} integration test(s) skipped; that is a failure: "
            + ", ".join(_skipped_integration),
            red=True,
        )
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def real_data() -> Path:
    """The slices of the real datasets that the repository carries (tests/data)."""
    return REAL_DATA
