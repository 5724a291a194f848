"""Flow tests (§11): YAML cases run against mocks at the httpx boundary.

``csflow test`` and the pytest plugin (entry point ``pytest11``) run the same cases through
the same code, so they give the same verdicts.
"""

from csflow.flowtest.cases import CaseOutcome, TestFile, load_test_files, run_case
from csflow.flowtest.mocks import MockRouter

__all__ = ["CaseOutcome", "MockRouter", "TestFile", "load_test_files", "run_case"]
