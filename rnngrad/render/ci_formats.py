"""Formats for CI systems: GitHub workflow commands and JUnit XML (check reports only).

GitHub: one ``::error file=...,title=...::message`` per model that could not be checked and
per failed threshold, escaped as the runner expects (data: ``%`` ``\\r`` ``\\n``; properties
also ``:`` and ``,``), then a ``::notice`` summary. JUnit: one ``<testcase>`` per model that
could not be checked (an ``<error>``) and per model × threshold (failing if any recurrence
fails it), with ``<failure>`` elements listing the failing recurrences. File text is made
plain first: XML 1.0 allows no control characters, and a workflow command ends at a newline.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any
from xml.etree import ElementTree

from rnngrad.render.text import plain


def escape_data(text: str) -> str:
    text = plain(text, newlines=True)
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(text: str) -> str:
    return escape_data(text).replace(":", "%3A").replace(",", "%2C")


class GithubRenderer:
    """GitHub workflow commands: an ``::error`` per failed threshold, a ``::notice`` summary."""

    extension = ".txt"

    def render(self, report: Any) -> str:
        return render_github(report)


class JunitRenderer:
    """JUnit XML: one testcase per model × threshold."""

    extension = ".xml"

    def render(self, report: Any) -> str:
        return render_junit(report)


def render_github(report: Any) -> str:
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
    cases: dict[tuple[str, str], list] = defaultdict(list)
    for result in report.results:
        cases[(result.model, result.threshold)].append(result)
    failures = sum(any(not r.passed for r in group) for group in cases.values())
    tests, errors = str(len(cases) + len(report.errors)), str(len(report.errors))
    suites = ElementTree.Element("testsuites", name="rnngrad", tests=tests,
                                 failures=str(failures), errors=errors)
    suite = ElementTree.SubElement(suites, "testsuite", name="rnngrad check", tests=tests,
                                   failures=str(failures), errors=errors, skipped="0")
    for error in report.errors:
        case = ElementTree.SubElement(suite, "testcase", name="read",
                                      classname=f"rnngrad.{xml_text(error.model)}")
        element = ElementTree.SubElement(case, "error", type="error",
                                         message=xml_text(error.message))
        element.text = xml_text(f"{error.message}\n{error.hint}")
    for (model, threshold), group in cases.items():
        case = ElementTree.SubElement(suite, "testcase", classname=f"rnngrad.{xml_text(model)}",
                                      name=str(threshold))
        bad = [r for r in group if not r.passed]
        if bad:
            failure = ElementTree.SubElement(case, "failure", type=str(threshold),
                                             message=xml_text(bad[0].message))
            failure.text = "\n".join(xml_text(f"{r.recurrence}: {r.message}") for r in bad)
        else:
            out = ElementTree.SubElement(case, "system-out")
            out.text = "\n".join(xml_text(f"{r.recurrence}: {r.message}") for r in group)
    ElementTree.indent(suites)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ElementTree.tostring(
        suites, encoding="unicode") + "\n"


def xml_text(text: str) -> str:
    """Text XML 1.0 can hold: control characters (but newline), lone surrogates and the
    noncharacters U+FFFE/U+FFFF replaced (:func:`plain`)."""
    return plain(text, newlines=True).replace("\t", " ").replace("\r", " ")
