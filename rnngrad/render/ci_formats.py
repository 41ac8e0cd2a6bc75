"""Formats for CI systems: GitHub workflow commands and JUnit XML (check reports only).

GitHub: one ``::error file=...,title=...::message`` per model that could not be checked and
per failed threshold, escaped as the runner expects (data: ``%`` ``\\r`` ``\\n``; properties
also ``:`` and ``,``), then a ``::notice`` summary. JUnit: one ``<testcase>`` per model that
could not be checked (an ``<error>``) and per model × recurrence × threshold, as the JSON
counts the checks (classname ``rnngrad.<model>``, name ``<threshold> <recurrence>``). File
text is made plain first: XML 1.0 allows no control characters, and a workflow command ends
at a newline.
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
    """JUnit XML: one testcase per model × recurrence × threshold, one per model in error."""

    extension = ".xml"

    def render(self, report: Any) -> str:
        """The report as JUnit XML (:func:`render_junit`)."""
        return render_junit(report)


def render_github(report: Any) -> str:
    """An ``::error`` line per model that could not be checked and per failed result (file =
    the model, title = threshold and recurrence), then a ``::notice`` with the summary."""
    lines = [f"::error file={escape_property(error.model)},title=rnngrad error::"
             f"{escape_data(error.text)} ({escape_data(error.hint)})"
             for error in report.errors]
    for result in report.failed:
        title = f"rnngrad {result.threshold} ({result.recurrence})"
        lines.append(f"::error file={escape_property(result.model)},"
                     f"title={escape_property(title)}::{escape_data(result.message)}")
    summary = "rnngrad check: " + report.summary
    lines.append(f"::notice title=rnngrad check::{escape_data(summary)}")
    return "\n".join(lines) + "\n"


def render_junit(report: Any) -> str:
    """One ``<testcase>`` per result (model × recurrence × threshold), as the JSON counts them,
    and one ``<error>`` testcase per model that could not be checked."""
    failures, errors = str(len(report.failed)), str(len(report.errors))
    tests = str(len(report.results) + len(report.errors))
    suites = ElementTree.Element("testsuites", name="rnngrad", tests=tests, failures=failures,
                                 errors=errors)
    suite = ElementTree.SubElement(suites, "testsuite", name="rnngrad check", tests=tests,
                                   failures=failures, errors=errors, skipped="0")
    for error in report.errors:
        case = ElementTree.SubElement(suite, "testcase", name="read",
                                      classname=f"rnngrad.{xml_text(error.model)}")
        element = ElementTree.SubElement(case, "error", type="error",
                                         message=xml_text(error.message))
        element.text = xml_text(f"{error.message}\n{error.hint}")
    for result in report.results:
        case = ElementTree.SubElement(suite, "testcase",
                                      classname=f"rnngrad.{xml_text(result.model)}",
                                      name=xml_text(f"{result.threshold} {result.recurrence}"))
        if result.passed:
            ElementTree.SubElement(case, "system-out").text = xml_text(result.message)
        else:
            failure = ElementTree.SubElement(case, "failure", type=str(result.threshold),
                                             message=xml_text(result.message))
            failure.text = xml_text(f"{result.recurrence}: {result.message}")
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode") + "\n"


def xml_text(text: str) -> str:
    """Text XML 1.0 can hold: control characters (but newline), lone surrogates and the
    noncharacters U+FFFE/U+FFFF replaced (:func:`plain`)."""
    return plain(text, newlines=True).replace("\t", " ").replace("\r", " ")
