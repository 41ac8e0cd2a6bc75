"""Formats for CI systems: GitHub workflow commands and JUnit XML (check reports only).

GitHub: one ``::error file=...,title=...::message`` per failed threshold, escaped as the
runner expects (data: ``%`` ``\\r`` ``\\n``; properties also ``:`` and ``,``), then a
``::notice`` summary. JUnit: one ``<testcase>`` per model × threshold (failing if any
recurrence fails it), with ``<failure>`` elements listing the failing recurrences.
"""

from __future__ import annotations

from typing import Any
from xml.etree import ElementTree

from rnngrad.render.text import plain


def escape_data(text: str) -> str:
    """``text`` as a workflow command's message: plain, with ``%``, CR and LF percent-encoded."""
    text = plain(text, newlines=True)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    """``text`` as a workflow command's property value: :func:`escape_data`, and ``:`` and
    ``,`` percent-encoded."""
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubRenderer:
    """GitHub workflow commands: an ``::error`` per failed threshold, a ``::notice`` summary."""

    extension = ".txt"

    def render(self, report: Any) -> str:
        """The report's workflow commands (:func:`render_github`)."""
        return render_github(report)


class JunitRenderer:
    """JUnit XML: one testcase per model × threshold."""

    extension = ".xml"

    def render(self, report: Any) -> str:
        """The report as JUnit XML (:func:`render_junit`)."""
        return render_junit(report)


def render_github(report: Any) -> str:
    """An ``::error`` line per failed result (file = the model, title = threshold and
    recurrence), then a ``::notice`` with the summary."""
    lines = []
    for result in report.failed:
        title = f"rnngrad {result.threshold} ({result.recurrence})"
        lines.append(f"::error file={escape_property(result.model)},"
                     f"title={escape_property(title)}::{escape_data(result.message)}")
    from rnngrad.render.trend import summary_text

    lines.append(f"::notice title=rnngrad check::{escape_data('rnngrad check: ' + summary_text(report))}")
    return "\n".join(lines) + "\n"


def render_junit(report: Any) -> str:
    """One ``<testcase>`` per result (model × recurrence × threshold), as the JSON counts them;
    classname ``rnngrad.<model>``, name ``<threshold> <recurrence>``."""
    failures = len(report.failed)
    total = len(report.results)
    suites = ElementTree.Element("testsuites", name="rnngrad", tests=str(total),
                                 failures=str(failures))
    suite = ElementTree.SubElement(suites, "testsuite", name="rnngrad check", tests=str(total),
                                   failures=str(failures), errors="0", skipped="0")
    for result in report.results:
        case = ElementTree.SubElement(suite, "testcase", classname=f"rnngrad.{_xml(result.model)}",
                                      name=_xml(f"{result.threshold} {result.recurrence}"))
        if result.passed:
            ElementTree.SubElement(case, "system-out").text = _xml(result.message)
        else:
            failure = ElementTree.SubElement(case, "failure", type=str(result.threshold),
                                             message=_xml(result.message))
            failure.text = _xml(f"{result.recurrence}: {result.message}")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode") + "\n"


def _xml(text: str) -> str:
    """Text XML 1.0 can hold: file text made plain (no control characters)."""
    return plain(text, newlines=True).replace("\r", "")
