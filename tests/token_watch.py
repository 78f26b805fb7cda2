"""Watch the whole test session's output for tokens: none may ever be printed or logged.

Every token a test issues (in-process, through the CLI, or printed by
``make run``) is remembered; every test report's captured stdout, stderr and
log sections, and its failure text, are scanned for the tokens issued so far
(a token cannot appear before it exists). ``tests/conftest.py`` fails the
session when one is found.
"""

from __future__ import annotations

import pytest

issued_tokens: set[str] = set()
leaks: set[str] = set()


def remember_token(token: str) -> str:
    if token:
        issued_tokens.add(token)
    return token


def watch_report(report: pytest.TestReport) -> None:
    if not issued_tokens:
        return
    texts = [content for _, content in report.sections]
    if report.longrepr is not None:
        texts.append(str(report.longrepr))
    for text in texts:
        if any(token in text for token in issued_tokens):
            leaks.add(report.nodeid)
