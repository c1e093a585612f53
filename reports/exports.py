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

INVALID_XML = re.compile(r"[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
CSV_COLUMNS = ("student_id", "score", "max_score", "percent", "status", "passed", "accuracy",
               "params", "seconds")


def _accuracy(result: dict[str, Any]) -> str:
    value = result.get("accuracy")
    return "" if value is None else f"{value:.4f}"


def grades_csv(results: list[dict[str, Any]]) -> str:
    """One row per submission, sorted by student id."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for result in sorted(results, key=lambda r: str(r.get("student"))):
        max_score = result.get("max_score") or 0
        writer.writerow([
            result.get("student"), result.get("score"), max_score,
            f"{100 * (result.get('score') or 0) / max_score:.1f}" if max_score else "",
            result.get("status"), "yes" if result.get("passed") else "no", _accuracy(result),
            (result.get("model") or {}).get("params") or "",
            (result.get("timings") or {}).get("total", "")])
    return buffer.getvalue()


def _check_points(result: dict[str, Any]) -> float:
    checks = result.get("checks") or []
    rule_points = (result.get("rubric") or {}).get("rule_points", 0)
    return 0.0 if not checks else round(rule_points / len(checks), 4)


def gradescope(result: dict[str, Any]) -> dict[str, Any]:
    """Gradescope's autograder results.json: score, execution_time, output, visibility, tests,
    leaderboard. The rule points are spread over one test per check; the accuracy points (and
    bonus) make one more test, so the tests add up to the score."""
    each = _check_points(result)
    earned = result.get("status") != "error"  # an ungradable submission earns nothing
    tests = [{"name": f"Rule: {c.get('rule') or c.get('id')}",
              "score": each if c.get("passed") and earned else 0.0, "max_score": each,
              "status": "passed" if c.get("passed") else "failed",
              "output": " ".join(p for p in (c.get("message"), c.get("todo")) if p),
              "visibility": "visible"} for c in result.get("checks") or []]
    rule_score = sum(t["score"] for t in tests)
    accuracy_max = round((result.get("max_score") or 0) - each * len(tests), 4)
    tests.append({"name": "Verified accuracy", "visibility": "visible",
                  "score": round(max(0.0, (result.get("score") or 0) - rule_score), 4),
                  "max_score": accuracy_max,
                  "status": "passed" if result.get("passed") else "failed",
                  "output": _accuracy_output(result)})
    return {"score": result.get("score") or 0.0,
            "execution_time": round((result.get("timings") or {}).get("total", 0)),
            "output": _summary(result), "visibility": "visible", "stdout_visibility": "hidden",
            "tests": tests,
            "leaderboard": [{"name": "Accuracy", "value": result.get("accuracy") or 0.0,
                             "order": "desc"}]}


def _accuracy_output(result: dict[str, Any]) -> str:
    if result.get("error"):
        return f"Not graded: {result['error'].get('message')}"
    if result.get("accuracy") is None:
        return "Not trained: the model broke a rule."
    target = (result.get("target") or {}).get("accuracy", 0)
    return f"Accuracy {result['accuracy']:.1%} (target {target:.0%}), retrained by the grader."


def _summary(result: dict[str, Any]) -> str:
    verdict = "passed" if result.get("passed") else "did not pass"
    lines = [f"Status: {result.get('status')}; the submission {verdict}."]
    lines += [f"Hint: {h.get('message')}" for h in result.get("hints") or []]
    if result.get("error"):
        lines.append(f"Error ({result['error'].get('stage')}): {result['error'].get('message')}")
    return "\n".join(lines)


def _xml_text(value: Any) -> str:
    """Text XML 1.0 can hold: control characters (ANSI colours in tracebacks) are dropped."""
    return INVALID_XML.sub("", str(value))


def junit(results: list[dict[str, Any]]) -> str:
    """One <testsuite> per submission, one <testcase> per check plus one for the accuracy."""
    suites = ElementTree.Element("testsuites", name="flowers-grader")
    for result in sorted(results, key=lambda r: str(r.get("student"))):
        suite = ElementTree.SubElement(suites, "testsuite", name=_xml_text(result.get("student")))
        cases = [(c.get("id"), c.get("passed"), c.get("message"))
                 for c in result.get("checks") or []]
        cases.append(("accuracy", result.get("passed"), _accuracy_output(result)))
        failures = 0
        for name, passed, message in cases:
            case = ElementTree.SubElement(suite, "testcase", name=str(name),
                                          classname=_xml_text(f"flowers.{result.get('student')}"))
            if passed is None:
                ElementTree.SubElement(case, "skipped", message=_xml_text(message))
            elif not passed:
                failures += 1
                ElementTree.SubElement(case, "failure", message=_xml_text(message))
        if result.get("error"):
            ElementTree.SubElement(suite, "system-err").text = _xml_text(
                result["error"].get("message"))
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failures))
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="unicode", xml_declaration=True) + "\n"


def dumps(document: Any) -> str:
    """JSON as every export writes it."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"
