"""Exports from result.json files: grades.csv (LMS import), Gradescope results.json, JUnit XML.

Everything here is deterministic (sorted, no clocks), so re-rendering gives identical bytes.
"""

from __future__ import annotations

import csv
import io
import json
import re
from typing import Any
from xml.etree import ElementTree

from grader.result import Result

INVALID_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CSV_COLUMNS = ("student_id", "score", "max_score", "percent", "status", "passed", "accuracy",
               "params", "seconds")


def _accuracy(result: Result) -> str:
    return "" if result.accuracy is None else f"{result.accuracy:.4f}"


def grades_csv(results: list[Result]) -> str:
    """One row per submission, sorted by student id."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in sorted(results, key=lambda r: r.student):
        max_score = result.max_score
        writer.writerow([
            result.student, result.score, max_score,
            f"{100 * result.score / max_score:.1f}" if max_score else "",
            result.status, "yes" if result.passed else "no", _accuracy(result),
            result.model.params or "", result.timings.get("total", "")])
    return buffer.getvalue()


def _check_points(result: Result) -> float:
    return 0.0 if not result.checks else round(result.rubric.rule_points / len(result.checks), 4)


def gradescope(result: Result) -> dict[str, Any]:
    """Gradescope's autograder results.json: score, execution_time, output, visibility, tests,
    leaderboard. The rule points are spread over one test per check; the accuracy points (and
    bonus) make one more test, so the tests add up to the score."""
    each = _check_points(result)
    earned = result.status != "error"  # an ungradable submission earns nothing
    tests = [{"name": f"Rule: {c.rule or c.id}",
              "score": each if c.passed and earned else 0.0, "max_score": each,
              "status": "passed" if c.passed else "failed",
              "output": " ".join(p for p in (c.message, c.todo) if p),
              "visibility": "visible"} for c in result.checks]
    rule_score = sum(t["score"] for t in tests)
    accuracy_max = round(result.max_score - each * len(tests), 4)
    tests.append({"name": "Verified accuracy", "visibility": "visible",
                  "score": round(max(0.0, result.score - rule_score), 4),
                  "max_score": accuracy_max,
                  "status": "passed" if result.passed else "failed",
                  "output": _accuracy_output(result)})
    return {"score": result.score,
            "execution_time": round(result.timings.get("total", 0)),
            "output": _summary(result), "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests,
            "leaderboard": [{"name": "Accuracy", "value": result.accuracy or 0.0,
                             "order": "desc"}]}


def _accuracy_output(result: Result) -> str:
    if result.error:
        return f"Not graded: {result.error.message}"
    if result.accuracy is None:
        return "Not trained: the model broke a rule."
    return (f"Accuracy {result.accuracy:.1%} (target {result.target.accuracy:.0%}), "
            f"retrained by the grader.")


def _summary(result: Result) -> str:
    verdict = "passed" if result.passed else "did not pass"
    lines = [f"Status: {result.status}; the submission {verdict}."]
    lines += [f"Hint: {h.message}" for h in result.hints]
    if result.error:
        lines.append(f"Error ({result.error.stage}): {result.error.message}")
    return "\n".join(lines)


def _xml_text(value: Any) -> str:
    """Text XML 1.0 can hold: control characters (ANSI colours in tracebacks) are dropped."""
    return INVALID_XML.sub("", str(value))


def junit(results: list[Result]) -> str:
    """One <testsuite> per submission, one <testcase> per check plus one for the accuracy."""
    suites = ElementTree.Element("testsuites", name="flowers-grader")
    for result in sorted(results, key=lambda r: r.student):
        suite = ElementTree.SubElement(suites, "testsuite", name=_xml_text(result.student))
        cases = [(c.id, c.passed, c.message) for c in result.checks]
        cases.append(("accuracy", result.passed, _accuracy_output(result)))
        failures = 0
        for name, passed, message in cases:
            case = ElementTree.SubElement(suite, "testcase", name=str(name),
                                          classname=_xml_text(f"flowers.{result.student}"))
            if passed is None:
                ElementTree.SubElement(case, "skipped", message=_xml_text(message))
            elif not passed:
                failures += 1
                ElementTree.SubElement(case, "failure", message=_xml_text(message))
        if result.error:
            ElementTree.SubElement(suite, "system-err").text = _xml_text(result.error.message)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def dumps(document: Any) -> str:
    """JSON as every export writes it."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
