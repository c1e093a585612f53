"""Load an exercise folder (exercise.toml + notebooks) into frozen, typed configuration."""

from __future__ import annotations

import importlib.resources
import tomllib
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from grader.errors import GradingError
from grader.kernel.sandbox import Limits
from grader.model.rules import ORDER as RULE_IDS

# The kernel's limits when the exercise file's [sandbox] table leaves one out.
DEFAULT_LIMITS = Limits(memory_bytes=12 << 30, max_processes=512, file_size_bytes=1 << 30,
                        work_dir_bytes=2 << 30, cpu_seconds=7200,
                        output_bytes_per_cell=1 << 20)

# The exercises that ship with the grader: the repository's exercises/, installed as the package
# grader.exercises (pyproject.toml, docs/packaging.md).
def _exercises_dir() -> Path:
    try:
        return Path(str(importlib.resources.files("grader.exercises")))
    except ModuleNotFoundError:  # a checkout that was not installed (the accelerator benchmark)
        return Path(__file__).resolve().parent.parent / "exercises"


EXERCISES_DIR = _exercises_dir()
DEFAULT_EXERCISE = "flowers-cnn"
DEFAULT_PROFILE = "full"


@dataclass(frozen=True)
class Target:
    accuracy: float  # the accuracy a submission must reach to pass
    stretch: float   # the accuracy that earns the full stretch bonus


@dataclass(frozen=True)
class Execution:
    cell_timeout: int      # seconds one cell may run in the student's kernel
    notebook_timeout: int  # seconds the whole notebook may run
    student_epochs: int    # epoch count injected into the notebook's parameters cell
    data_variable: str     # parameters-cell variable that receives the local shard pattern
    epochs_variable: str   # parameters-cell variable that receives student_epochs
    allowed_magics: tuple[str, ...]  # magics that run while grading; all others are skipped


@dataclass(frozen=True)
class RuleText:
    rule: str   # the rule, stated for the student
    todo: str   # what to do when it fails


@dataclass(frozen=True)
class Rules:
    min_params: int       # fewer parameters than this: nothing to grade
    max_params: int       # more than this: a head that overfits and trains slowly
    min_conv_layers: int  # at least this many convolution layers (sub-models included)
    max_activation: int   # values all layers output for one image, summed
    allowed_layers: frozenset[str]        # keras.layers classes that may be deserialized
    allowed_initializers: frozenset[str]  # keras.initializers classes that may be
    text: dict[str, RuleText]             # rule id → what the student reads


@dataclass(frozen=True)
class Hints:
    solution_params: int  # parameters of the exercise's own solution, for scale in the hints
    underfit_below: int   # parameters under which the "underfits" hint appears
    overfit_above: int    # parameters over which the "overfits" hint appears
    head_share: float     # share of parameters in a Flatten→Dense head that earns a hint
    overfit_gap: float    # training minus validation accuracy that earns a hint


@dataclass(frozen=True)
class Rubric:
    rule_points: float      # shared equally among the checks
    accuracy_points: float  # linear from chance to the target accuracy
    stretch_bonus: float    # linear from the target to the stretch accuracy
    chance: float           # accuracy of guessing (1 / classes)

    @property
    def max_score(self) -> float:
        return self.rule_points + self.accuracy_points + self.stretch_bonus


PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")


@dataclass(frozen=True)
class Profile:
    name: str               # the profile's key in exercise.toml
    epochs: int             # trusted training epochs
    batch_size: int         # images per step
    learning_rate: float    # peak learning rate of Adam
    warmup_epochs: int      # linear warm-up before the schedule starts
    schedule: str           # "cosine" (decay to 0 at the last epoch) or "constant"
    augment: bool           # random flips, crops and colour jitter on training images
    label_smoothing: float  # cross-entropy label smoothing
    max_train_images: int   # cap on training images (0 = all): keeps tests fast
    max_val_images: int     # cap on validation images (0 = all)
    validate_every_epoch: bool  # validation curve (false: only the final model, faster)
    seed: int               # seeds weights, shuffling and augmentation
    seeds: int = 1          # trainings, from seed, seed + 1, ...: the verdict uses their mean
    # the Keras dtype policy the profile was tuned in, used unless --precision names one; "auto"
    # lets the hardware choose (bf16 where it has it)
    precision: str = "auto"

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise GradingError("usage", f"[profiles.{self.name}] precision = "
                               f"'{self.precision}' is not one of {', '.join(PRECISIONS)}. "
                               "Fix the exercise file.")


@dataclass(frozen=True)
class Dataset:
    url: str      # the public photo archive (.tgz, one folder per class inside `root`)
    sha256: str   # its published checksum
    size: int     # its size in bytes (for progress before the server says)
    root: str     # the folder inside the archive that holds the class folders


@dataclass(frozen=True)
class Exercise:
    id: str
    title: str
    version: str            # of this exercise file; notebooks carry it (grade check)
    folder: Path
    notebook: Path          # the student notebook
    reference: Path         # our solution notebook
    classes: tuple[str, ...]
    image_size: int
    validation_split: float
    target: Target
    execution: Execution
    rules: Rules
    hints: Hints
    rubric: Rubric
    profiles: dict[str, Profile]
    mirror: dict[str, str]  # gs:// prefix → local folder ("{data}" = --data, "" = none)
    dataset: Dataset
    sandbox: Limits = DEFAULT_LIMITS
    downloads: dict[str, str] = field(default_factory=dict)  # URL → local file ("{data}" = --data)

    def reference_notebook(self) -> Path:
        """The reference solution, for instructors: it lives in the course folder (the
        repository's reference/), never in the package students install."""
        if not self.reference.is_file():
            raise GradingError("usage", f"The reference solution of exercise '{self.id}' is not "
                               f"at {self.reference}: it does not ship with the installed "
                               f"package. Run this from the course repository, or pass "
                               f"--exercise DIR, a course folder whose exercise.toml names it "
                               f"(docs/packaging.md).")
        return self.reference

    def downloads_for(self, data_dir: Path) -> dict[str, str]:
        """The download URLs the kernel serves from a local file, where that file exists."""
        served = {url: file.replace("{data}", str(data_dir.resolve()))
                  for url, file in self.downloads.items()}
        return {url: file for url, file in served.items() if Path(file).is_file()}

    def mirror_for(self, data_dir: Path, overrides: dict[str, Path] | None = None
                   ) -> dict[str, str]:
        """The prefixes the kernel serves locally: the exercise's, then the command line's."""
        served = {prefix.rstrip("/"): str(data_dir.resolve()) if folder == "{data}" else folder
                  for prefix, folder in self.mirror.items()}
        for prefix, folder in (overrides or {}).items():
            served[prefix.rstrip("/")] = str(Path(folder).resolve())
        return {prefix: folder for prefix, folder in served.items() if folder}

    def profile(self, name: str) -> Profile:
        """The named training profile, or a GradingError listing the ones that exist."""
        if name not in self.profiles:
            known = ", ".join(sorted(self.profiles))
            raise GradingError("usage", f"Unknown profile '{name}'. This exercise has: {known}.")
        return self.profiles[name]


def _build(cls: type, table: dict[str, Any], where: str, **extra: Any) -> Any:
    """Instantiate a dataclass from a TOML table, naming the missing or unknown keys (keys with
    a default may be left out)."""
    names = {f.name for f in fields(cls)} - set(extra)
    required = {f.name for f in fields(cls) if f.default is MISSING
                and f.default_factory is MISSING} - set(extra)
    missing = required - set(table)
    unknown = set(table) - names
    if missing or unknown:
        raise GradingError("usage", f"{where}: missing keys {sorted(missing)}, "
                           f"unknown keys {sorted(unknown)}. Fix the exercise file.")
    return cls(**table, **extra)


def load_exercise(name_or_path: str | Path = DEFAULT_EXERCISE) -> Exercise:
    """Load an exercise by name (a folder of ``exercises/``) or by the path of its folder."""
    folder = Path(name_or_path)
    if not (folder / "exercise.toml").is_file():
        folder = EXERCISES_DIR / str(name_or_path)
    toml_path = folder / "exercise.toml"
    if not toml_path.is_file():
        known = ", ".join(sorted(p.name for p in EXERCISES_DIR.iterdir() if p.is_dir()))
        raise GradingError("usage", f"No exercise '{name_or_path}'. Known exercises: {known}.")
    try:
        doc = tomllib.loads(toml_path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise GradingError("usage", f"{toml_path} is not valid TOML: {exc}.") from exc
    return _exercise_from(doc, folder.resolve(), str(toml_path))


def _rules(table: dict[str, Any], where: str, numbers: dict[str, int]) -> Rules:
    """The [rules] table, with every rule's texts (grader.model.rules.RULES names the rules)."""
    table = dict(table)
    entries = table.pop("text", {})
    missing = [rule_id for rule_id in RULE_IDS if rule_id not in entries]
    unknown = sorted(set(entries) - set(RULE_IDS))
    if missing or unknown:
        raise GradingError("usage", f"{where}: " + "; ".join(
            [f"rule '{rule_id}' has no [rules.text.{rule_id}] (its `rule` and `todo`)"
             for rule_id in missing] +
            [f"[rules.text.{rule_id}] is not a rule the grader knows" for rule_id in unknown]) +
            ". Fix the exercise file.")
    numbers = {**numbers, **{key: value for key, value in table.items()
                             if isinstance(value, int)}}
    text = {rule_id: _rule_text(entries[rule_id], numbers, f"{where} text.{rule_id}")
            for rule_id in RULE_IDS}
    return _build(Rules, {**table, "allowed_layers": frozenset(table.get("allowed_layers", ())),
                          "allowed_initializers": frozenset(
                              table.get("allowed_initializers", ()))}, where, text=text)


def _rule_text(entry: dict[str, Any], numbers: dict[str, int], where: str) -> RuleText:
    """A rule's texts with the exercise's numbers filled in ({max_params:,} → 3,000,000)."""
    text = _build(RuleText, entry, where)
    try:
        return RuleText(text.rule.format(**numbers), text.todo.format(**numbers))
    except (KeyError, IndexError, ValueError) as exc:
        raise GradingError("usage", f"{where}: the text asks for {exc}, which is not one of "
                           f"{', '.join(sorted(numbers))}. Fix the exercise file.") from exc


def _exercise_from(doc: dict[str, Any], folder: Path, where: str) -> Exercise:
    head = dict(doc["exercise"])
    profiles = {name: _build(Profile, table, f"{where} [profiles.{name}]", name=name)
                for name, table in doc.get("profiles", {}).items()}
    return Exercise(
        id=head["id"], title=head["title"], version=str(head.get("version", "0")),
        folder=folder,
        notebook=(folder / head["notebook"]).resolve(),
        reference=(folder / head["reference"]).resolve(),
        classes=tuple(head["classes"]), image_size=int(head["image_size"]),
        validation_split=float(head["validation_split"]),
        target=_build(Target, doc["target"], f"{where} [target]"),
        execution=_build(Execution, {**doc["execution"], "allowed_magics": tuple(
            doc["execution"].get("allowed_magics", ()))}, f"{where} [execution]"),
        rules=_rules(doc["rules"], f"{where} [rules]",
                     {"image_size": int(head["image_size"]), "classes": len(head["classes"])}),
        hints=_build(Hints, doc["hints"], f"{where} [hints]"),
        rubric=_build(Rubric, doc["rubric"], f"{where} [rubric]"),
        profiles=profiles,
        mirror={str(k): str(v) for k, v in doc.get("mirror", {}).items()},
        dataset=_build(Dataset, doc["dataset"], f"{where} [dataset]"),
        sandbox=_build(Limits, {**asdict(DEFAULT_LIMITS), **doc.get("sandbox", {})},
                       f"{where} [sandbox]"),
        downloads={str(k): str(v) for k, v in doc.get("downloads", {}).items()},
    )
