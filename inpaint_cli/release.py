"""Releasing a trained export into a bundled-weights folder (docs/design.md "Checkpoints", "Names").

A release is measured on the exported file beside Telea and Navier-Stokes (and the harmonic
baseline, for context) on the evaluation protocol; the table is stamped into the file's `eval_json` metadata and the manifest, and the
manifest's default becomes the best bundled model that beats both classical methods everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from safetensors.torch import load_file

from inpaint_cli.checkpoint import atomic_save_safetensors, read_metadata
from inpaint_cli.errors import InpaintError
from inpaint_cli.evaluate import OVERALL, EvalResult, evaluate_methods, result_from_json, result_to_json
from inpaint_cli.fill import BLENDS
from inpaint_cli.io import data_folder
from inpaint_cli.metrics import HIGHER_IS_BETTER
from inpaint_cli.registry import get_arch
from inpaint_cli.weights import read_manifest, weights_dir, write_manifest

BASELINES = ("telea", "ns")
#: classical methods shown beside the model for context, not part of the bar: the membrane
#: interpolant is what a Poisson-blended fill (GLCIC's post-processing) gives with no network at all,
#: and patchmatch the exemplar-based fill that copies texture (Barnes et al. 2009)
REFERENCES = ("harmonic", "patchmatch")
#: every method of a release's evaluation that is not the model being released
CLASSICAL = (*BASELINES, *REFERENCES)
BAR_METRICS = ("psnr", "ssim", "hole_l1")
#: the membrane interpolant every bundled model must beat on hole L1 on every mask set, so that the
#: network adds something of its own over the flat fill its output is blended into
HARMONIC = "harmonic"
#: DeepFill v2's free-form strokes (Yu et al. 2019), drawn with the protocol's seed
STROKES = "freeform"
#: sections every bundled model must win on every bar metric (issue 5; strokes, issue 21)
BUNDLE_SECTIONS = ("box", "30-40", STROKES)
#: sections where the default model must lead both baselines by DEFAULT_MARGIN_DB of PSNR
MARGIN_SECTIONS = ("box", "30-40", "50-60")
DEFAULT_MARGIN_DB = 1.0
#: the protocol's mask sets beside boxes: bands of the NVIDIA irregular masks (hole %)
IRREGULAR_BANDS = ("10-20", "30-40", "50-60")


@dataclass(frozen=True)
class Verdict:
    """How a model stands against the classical baselines in one evaluation."""

    bundle: bool  # wins every bar metric on BUNDLE_SECTIONS
    everywhere: bool  # wins every bar metric on every section
    margin: bool  # and leads by DEFAULT_MARGIN_DB PSNR on MARGIN_SECTIONS
    shortfalls: list[str]  # one phrase per missed condition


def judge(result: EvalResult, label: str) -> Verdict:
    """Compare `label` with both baselines, section by section (the "overall" pool is skipped)."""
    missing = [name for name in (label, *BASELINES, HARMONIC) if name not in result.methods]
    if missing:
        raise InpaintError(
            f"the evaluation lacks {', '.join(missing)}: it must compare the model with telea, ns and harmonic"
        )
    absent = [m for m in BAR_METRICS if m not in result.metrics]
    if absent:
        raise InpaintError(f"the evaluation lacks {', '.join(absent)}: run it with --metric psnr --metric ssim")
    absent_sections = sorted({s for s in (*BUNDLE_SECTIONS, *MARGIN_SECTIONS) if s not in result.sections})
    if absent_sections:
        raise InpaintError(f"the evaluation lacks the mask sets {', '.join(absent_sections)}")
    shortfalls: list[str] = []
    losing_sections: set[str] = set()
    for section in (name for name in result.sections if name != OVERALL):
        scores = result.sections[section]
        for metric in BAR_METRICS:
            mine = scores[label][metric].mean
            for baseline in BASELINES:
                theirs = scores[baseline][metric].mean
                wins = mine > theirs if metric in HIGHER_IS_BETTER else mine < theirs
                if not wins:
                    losing_sections.add(section)
                    shortfalls.append(f"{section}: {metric} {mine:.4g} vs {baseline} {theirs:.4g}")
    short_leads = []
    for section in MARGIN_SECTIONS:
        scores = result.sections[section]
        lead = scores[label]["psnr"].mean - max(scores[b]["psnr"].mean for b in BASELINES)
        if lead < DEFAULT_MARGIN_DB:
            short_leads.append(f"{section}: PSNR lead {lead:+.2f} dB < {DEFAULT_MARGIN_DB:g} dB")
    shortfalls += short_leads
    blurrier = [section for section in result.sections if section != OVERALL and not _beats_harmonic(result, label, section)]
    shortfalls += [
        f"{section}: hole_l1 {result.sections[section][label]['hole_l1'].mean:.4g}"
        f" vs {HARMONIC} {result.sections[section][HARMONIC]['hole_l1'].mean:.4g}"
        for section in blurrier
    ]
    bundle = not losing_sections.intersection(BUNDLE_SECTIONS) and not blurrier
    everywhere = not losing_sections and not blurrier
    margin = everywhere and not short_leads
    return Verdict(bundle=bundle, everywhere=everywhere, margin=margin, shortfalls=shortfalls)


def _beats_harmonic(result: EvalResult, label: str, section: str) -> bool:
    scores = result.sections[section]
    return scores[label]["hole_l1"].mean < scores[HARMONIC]["hole_l1"].mean


def release(export: Path, result: EvalResult, weights_dir: Path, post_processing: str) -> tuple[Path, Verdict, str]:
    """Copy `export` into `weights_dir` as `<arch>-<config>.safetensors` with `eval_json` and the
    `post_processing` its fills were measured with (what `fill --blend auto` then applies) stamped
    in, record it in the manifest and re-pick the default. Returns (file, verdict, default).

    Refuses a model that does not beat both baselines on boxes and the 30-40 % band.
    """
    metadata = read_metadata(export)
    label = _own_label(result, export.name)
    if result.blend_of(label) != post_processing:
        raise InpaintError(f"the evaluation measured {label!r}, not its fills with --blend {post_processing}")
    verdict = judge(result, label)
    if not verdict.bundle:
        raise InpaintError(f"{export.name} does not clear the bar to be bundled: {'; '.join(verdict.shortfalls)}")
    target = weights_dir / f"{metadata['arch']}-{metadata['config']}.safetensors"
    manifest = read_manifest(weights_dir)
    tensors = load_file(str(export))
    atomic_save_safetensors(tensors, target, metadata | {"eval_json": result_to_json(result), "post_processing": post_processing})
    arch = metadata["arch"]
    manifest.setdefault("models", {})[arch] = target.name
    manifest.setdefault("summaries", {})[arch] = summary_line(metadata, result, label, post_processing)
    manifest["default"] = _best_default(weights_dir, manifest["models"])
    write_manifest(weights_dir, manifest)
    return target, verdict, manifest["default"]


def refuse_short(exports: Sequence[Path], measured: Measured) -> None:
    """Raise, before anything is released, when any of `exports` misses the bar to be bundled."""
    for index, export in enumerate(exports):
        verdict = judge(measured.result_of(index), measured.labels[index])
        if not verdict.bundle:
            raise InpaintError(f"{export.name} does not clear the bar to be bundled: {'; '.join(verdict.shortfalls)}")


def protocol_mask_sets(irregular: Path | None = None) -> list[str]:
    """The release protocol's mask sets: boxes, the `IRREGULAR_BANDS` folders of `irregular`
    (default: $INPAINT_DATA/masks/nvidia-irregular), which must exist, then the strokes."""
    bands = irregular or data_folder("masks") / "nvidia-irregular"
    folders = [str(bands / band) for band in IRREGULAR_BANDS]
    mask_sets = ["box", *folders, STROKES]
    for folder in folders:
        if not Path(folder).is_dir():
            raise InpaintError(f"mask folder not found: {folder} (pass --irregular DIR)")
    return mask_sets


@dataclass(frozen=True)
class Measured:
    """Exports measured for `release` in one evaluation: where they go, their post-processing, the
    evaluation and each export's label in it."""

    weights_dir: Path
    post_processing: str
    result: EvalResult
    labels: list[str]

    def result_of(self, index: int) -> EvalResult:
        """The evaluation as the `index`th export's release records it: it and the classical methods."""
        return self.result.restricted_to([*_classical(self.result), self.labels[index]])


def measure(
    exports: Sequence[Path],
    *,
    to: Path | None = None,
    data: Path | None = None,
    irregular: Path | None = None,
    eval_json: Path | None = None,
    blend: str = "auto",
    device: str = "auto",
    progress: Callable[[int, int], None] | None = None,
) -> Measured:
    """`inpaint release` up to its verdicts: the bundled folder (`to`, default the one `fill` reads),
    the post-processing (`blend`; auto: the architecture's paper, which every export must share) and
    one evaluation of all `exports` beside the baselines and references on the protocol (seed 0,
    images of `data`, default $INPAINT_DATA/eval; `progress(done, total)`), so that the classical
    methods run once; or the `eval_json` result instead."""
    directory = to or weights_dir()
    if directory is None:
        raise InpaintError("no bundled-weights folder found: pass --to DIR or set INPAINT_WEIGHTS")
    if blend not in BLENDS:
        raise InpaintError(f"unknown --blend {blend!r}; use one of {', '.join(BLENDS)}")
    if blend == "auto":
        own = {get_arch(read_metadata(export)["arch"]).post_processing for export in exports}
        if len(own) > 1:
            raise InpaintError(f"these exports' papers post-process differently ({', '.join(sorted(own))}): pass --blend")
        blend = own.pop()
    if eval_json is not None:
        if not eval_json.is_file():
            raise InpaintError(f"--eval-json file not found: {eval_json}")
        result = result_from_json(eval_json.read_text())
    else:
        data_dir = data or data_folder("eval")
        mask_sets = protocol_mask_sets(irregular)
        result, _ = evaluate_methods(list(CLASSICAL), [str(export) for export in exports], data_dir,
                                     mask_sets, ["psnr", "ssim"], blend=blend, device=device, progress=progress)
    labels = [label for label in result.methods if label not in CLASSICAL]
    if len(labels) != len(exports):
        raise InpaintError(
            f"the evaluation compares {len(labels)} model(s) with the classical methods, not the {len(exports)} given"
        )
    return Measured(Path(directory), blend, result, labels)


def _classical(result: EvalResult) -> list[str]:
    return [label for label in result.methods if label in CLASSICAL]


def summary_line(metadata: dict[str, str], result: EvalResult, label: str, post_processing: str) -> str:
    """One line for `inpaint models`: training figures and the box and 30-40 % PSNR beside Telea."""
    hours = float(metadata.get("wall_time_s", 0)) / 3600
    lineage = json.loads(metadata.get("training_json", "{}")).get("warm_start")
    while lineage:
        hours += float(lineage.get("wall_time_s") or 0) / 3600
        lineage = lineage.get("warm_start")
    scores = ", ".join(
        f"{section} {result.sections[section][label]['psnr'].mean:.2f} dB (telea {result.sections[section]['telea']['psnr'].mean:.2f})"
        for section in BUNDLE_SECTIONS
    )
    blended = "" if post_processing == "none" else f" ({post_processing} blending)"
    return f"{hours:.1f} h training ({metadata.get('hardware', '?')}); PSNR{blended} {scores}"


def _best_default(weights_dir: Path, models: dict[str, str]) -> str:
    """The bundled file whose own evaluation beats both baselines on every section with the highest
    mean PSNR over its sections; `telea` when none does."""
    best, best_psnr = "telea", float("-inf")
    for arch, file in sorted(models.items()):
        metadata = read_metadata(weights_dir / file)
        result = result_from_json(metadata["eval_json"])
        label = _own_label(result, file)
        try:
            eligible = judge(result, label).everywhere
        except InpaintError:  # measured before the gate took its present form: not the default until re-released
            eligible = False
        if not eligible:
            continue
        sections = [s for s in result.sections if s != OVERALL]
        mean_psnr = sum(result.sections[s][label]["psnr"].mean for s in sections) / len(sections)
        if mean_psnr > best_psnr:
            best, best_psnr = file, mean_psnr
    return best


def _own_label(result: EvalResult, file: str) -> str:
    """The label the file's own evaluation gave it: the one method that is not a baseline."""
    others = [label for label in result.methods if label not in CLASSICAL]
    if len(others) != 1:
        raise InpaintError(f"{file}: its eval_json must compare exactly one model with telea and ns, found {others}")
    return others[0]

