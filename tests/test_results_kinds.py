"""The chain's results table names each generation as the study does: teacher, student or control."""

from __future__ import annotations

from ban.predictions import GenerationMetrics, GenerationPredictions
from ban_pipeline.reporting.results import Kind, kind_of_record, results_table


def record(name: str, teacher: str | None, reads_teacher: bool) -> GenerationPredictions:
    metrics = GenerationMetrics(100, 1, 5.0, {"test_error": 10.0}, "fp32", "cpu", None)
    return GenerationPredictions(name, teacher, "image", metrics, [], {}, reads_teacher)


def test_a_generation_that_never_read_its_teacher_is_a_control() -> None:
    saved = {"gen0": record("gen0", None, False), "gen1": record("gen1", "gen0", True),
             "control": record("control", "gen0", False)}
    kinds = {name: kind_of_record(saved_record) for name, saved_record in saved.items()}
    assert kinds == {"gen0": Kind.TEACHER, "gen1": Kind.STUDENT, "control": Kind.CONTROL}
    table = results_table({name: {"kind": kind, "teacher": saved[name].teacher or ""}
                           for name, kind in kinds.items()}, {})
    assert list(table["kind"]) == ["teacher", "student", "control"]


def test_a_record_saved_before_it_said_whether_it_read_its_teacher_reads_as_before() -> None:
    """Records of chains without a control: every generation with a teacher read it."""
    for name, teacher in (("gen0", None), ("gen1", "gen0")):
        saved = record(name, teacher, teacher is not None).to_dict()
        del saved["reads_teacher"]
        assert GenerationPredictions.from_dict(saved).reads_teacher is (teacher is not None)
