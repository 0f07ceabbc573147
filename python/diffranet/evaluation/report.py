"""The report folder: ``index.html`` (self-contained), ``metrics.json`` and the PNG figures.

``metrics.json`` holds every number: at the top level the first model's
``accuracy``, ``hitmiss_accuracy`` and ``confusion_matrix`` (rows true
class, columns predicted) with the rest of its metrics, under ``models`` the
metrics of every model in order, and under ``data`` what was evaluated.
Numbers that are undefined (e.g. the precision of a class never predicted)
are ``null``. ``index.html`` shows the comparison table, each model's
confusion matrix and per-class table, the hit / miss curves, accuracy
against the label quantity, galleries and training curves; the PNGs are
embedded in it (base64), so the page can be mailed or archived alone.
"""

from __future__ import annotations

import base64
import html
import json
import math
import re
from pathlib import Path

import numpy as np

from .. import plots
from .._atomic import atomic_write
from ..classes import HITMISS_NAMES

__all__ = ["write_report", "to_json"]

_MAX_GALLERY = 24


def to_json(value):
    """``value`` with numpy types as Python ones and non-finite floats as None."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if isinstance(value, np.ndarray):
        return to_json(value.tolist())
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_atomic(path, text):
    with atomic_write(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _slug(name):
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "model"


def _percent(value):
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.2f} %"


def _misclassified_gallery(evaluation, data, limit=_MAX_GALLERY):
    """Indices of wrong decisions, spread over the (true, predicted) pairs, most confident first."""
    e = evaluation
    wrong = np.flatnonzero(e.y_true != e.y_pred)
    if not len(wrong):
        return []
    confidence = e.proba[wrong].max(axis=1)
    groups = {}
    for i in wrong[np.argsort(-confidence, kind="stable")]:
        groups.setdefault((int(e.y_true[i]), int(e.y_pred[i])), []).append(int(i))
    ordered = sorted(groups.values(), key=len, reverse=True)
    chosen = []
    while len(chosen) < limit and any(ordered):
        for group in ordered:
            if group and len(chosen) < limit:
                chosen.append(group.pop(0))
    return chosen


def _caption(evaluation, data, i):
    e = evaluation
    text = f"{data.names[i]}\ntrue {e.labels[e.y_true[i]]}, predicted {e.labels[e.y_pred[i]]}"
    if data.quantity is not None:
        text += f"\n{int(data.quantity[i])} {data.quantity_name[2:].replace('_', ' ')}"
    return text


def _figures(evaluations, data, out):
    """Draw every figure; returns {key: (path, caption)} in display order."""
    figures = {}
    for e in evaluations:
        slug = _slug(e.name)
        per_class = [e.metrics["per_class"][name] for name in e.labels]
        figures[f"cm:{e.name}"] = (plots.confusion_matrix_figure(
            e.metrics["confusion_matrix"], e.labels, out / f"confusion-{slug}.png",
            [c["precision"] for c in per_class], [c["recall"] for c in per_class],
            title=f"{e.name}: confusion matrix ({len(e.y_true)} frames)"), "")
    if data.hit.any() and (~data.hit).any():
        figures["roc"] = (plots.roc_figure(
            [(e.name, e.metrics["roc"], e.metrics["operating_point"]) for e in evaluations], out / "roc.png"), "")
        figures["pr"] = (plots.pr_figure(
            [(e.name, e.metrics["precision_recall"], e.metrics["operating_point"]) for e in evaluations],
            out / "precision-recall.png"), "")
    if data.quantity is not None:
        table = evaluations[0].metrics["accuracy_by_quantity"]
        series = []
        for e in evaluations:
            q = e.metrics["accuracy_by_quantity"]
            series.append((f"{e.name}: {'class' if e.task == 'classes' else 'hit / miss'}", q["count"],
                           q["accuracy"]))
            if e.task == "classes":
                series.append((f"{e.name}: hit / miss", q["count"], q["hitmiss_accuracy"]))
        thresholds = {k: v for k, v in data.settings.items() if k.endswith("_min")}
        figures["quantity"] = (plots.quantity_figure([tuple(b) for b in table["bins"]], series,
                                                     out / "accuracy-by-spots.png", thresholds,
                                                     quantity=data.quantity_name[2:].replace("_", " ")), "")
    for e in evaluations:
        chosen = _misclassified_gallery(e, data)
        if chosen:
            path, scaling = plots.gallery_figure(
                [e.images[i] for i in chosen], [_caption(e, data, i) for i in chosen],
                out / f"misclassified-{_slug(e.name)}.png",
                f"{e.name}: {len(chosen)} of {int((e.y_true != e.y_pred).sum())} misclassified frames "
                f"(most confident first, spread over the kinds of error)")
            figures[f"wrong:{e.name}"] = (path, scaling)
        if "training_log" in e.metrics:
            figures[f"log:{e.name}"] = (plots.learning_curve_figure(
                e.metrics["training_log"], out / f"training-{_slug(e.name)}.png",
                title=f"{e.name}: training history"), "")
    return figures


def _img(path, alt):
    data = base64.b64encode(Path(path).read_bytes()).decode("ascii")
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt)}">'
            f'<figcaption><a href="{html.escape(Path(path).name)}">{html.escape(Path(path).name)}</a>'
            f'</figcaption></figure>')


def _comparison_table(evaluations):
    head = ("model", "task", "frames", "accuracy", "hit/miss accuracy", "hit recall", "hit precision",
            "ROC AUC", "frames/s")
    rows = []
    for e in evaluations:
        x = e.metrics
        op = x["operating_point"]
        auc = x["roc"]["auc"]
        rows.append((e.name, "5 classes" if e.task == "classes" else "hit / miss", str(x["n_images"]),
                     _percent(x["accuracy"]), _percent(x["hitmiss_accuracy"]), _percent(op["recall"]),
                     _percent(op["precision"]), "-" if math.isnan(auc) else f"{auc:.4f}",
                     f"{x['images_per_s']:.0f}"))
    return _table(head, rows)


def _table(head, rows):
    out = ["<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>")
    return "\n".join(out + ["</table>"])


def _per_class_table(per_class):
    return _table(("class", "precision", "recall", "frames"),
                  [(name, _percent(v["precision"]), _percent(v["recall"]), v["support"])
                   for name, v in per_class.items()])


def _matrix_table(matrix, labels):
    head = ["true \\ predicted"] + list(labels)
    return _table(head, [[labels[i]] + list(row) for i, row in enumerate(matrix)])


_STYLE = """body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:0.6em 0}td,th{border:1px solid #bbb;padding:3px 8px;text-align:right}
th{background:#eee}td:first-child{text-align:left}figure{margin:0.8em 0}img{max-width:100%}
figcaption{font-size:80%;color:#666}.note{color:#555;font-size:90%}"""


def write_report(evaluations, data, out, gallery=None, title="diffranet evaluation"):
    """Write ``index.html``, ``metrics.json`` and the figures of some evaluations.

    Parameters
    ----------
    evaluations : list of Evaluation
        From :func:`~diffranet.evaluation.evaluate.evaluate_model`, all on ``data``.
    data : LabelledData
    out : path-like
        Report folder (created).
    gallery : dict, optional
        An extra gallery shown first: ``{"images": [...], "titles": [...], "title": str}``.
    title : str

    Returns
    -------
    dict
        ``{"report": Path, "metrics": Path, "figures": [Path, ...]}``.
    """
    if not evaluations:
        raise ValueError("write_report needs at least one evaluation")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = _figures(evaluations, data, out)
    extra = None
    if gallery is not None:
        extra = plots.gallery_figure(gallery["images"], gallery["titles"], out / "gallery.png", gallery["title"])
    counts = np.bincount(data.labels, minlength=len(data.class_names)).tolist()
    data_summary = {"source": data.source, "kind": data.kind, "n_images": len(data),
                    "class_counts": dict(zip(data.class_names, counts)), "settings": data.settings}
    first = evaluations[0].metrics
    document = {"accuracy": first["accuracy"], "hitmiss_accuracy": first["hitmiss_accuracy"],
                "confusion_matrix": first["confusion_matrix"], "model": evaluations[0].name, **first,
                "data": data_summary,
                "models": [{"name": e.name, "metadata": _model_summary(e.model), **e.metrics} for e in evaluations]}
    metrics_path = out / "metrics.json"
    _write_atomic(metrics_path, json.dumps(to_json(document), indent=1, allow_nan=False) + "\n")

    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_STYLE}</style></head><body>", f"<h1>{html.escape(title)}</h1>",
             f"<p>Data: {html.escape(data.source)}: {len(data)} frames, "
             + ", ".join(f"{n} {html.escape(name)}" for name, n in zip(data.class_names, counts)) + ".</p>"]
    if extra is not None:
        parts += ["<h2>Frames</h2>", f"<p class='note'>{html.escape(extra[1])}</p>", _img(extra[0], "gallery")]
    parts += ["<h2>Models</h2>", _comparison_table(evaluations),
              "<p class='note'>Accuracy over the five classes when data and model have them, else over hit / miss. "
              "A hit is a weak, good or strong frame; hit recall is the share of hits kept, hit precision the "
              "share of true hits among the frames called hits. Every number is in metrics.json.</p>"]
    for key in ("roc", "pr", "quantity"):
        if key in figures:
            parts.append(_img(figures[key][0], key))
    for e in evaluations:
        parts += [f"<h2>{html.escape(e.name)}</h2>",
                  f"<p class='note'>{html.escape(repr(e.model))}</p>",
                  "<h3>Confusion matrix (rows: true class)</h3>", _matrix_table(e.metrics["confusion_matrix"], e.labels),
                  _per_class_table(e.metrics["per_class"]), _img(figures[f"cm:{e.name}"][0], "confusion matrix")]
        if e.task == "classes":
            parts += ["<h3>Hit / miss</h3>", _matrix_table(e.metrics["hitmiss_confusion_matrix"], HITMISS_NAMES)]
        if f"wrong:{e.name}" in figures:
            path, scaling = figures[f"wrong:{e.name}"]
            parts += ["<h3>Misclassified frames</h3>", f"<p class='note'>{html.escape(scaling)}</p>",
                      _img(path, "misclassified frames")]
        if f"log:{e.name}" in figures:
            parts += ["<h3>Training log</h3>", _img(figures[f"log:{e.name}"][0], "training log")]
    parts.append("</body></html>")
    report_path = out / "index.html"
    _write_atomic(report_path, "\n".join(parts) + "\n")
    paths = [p for p, _ in figures.values()] + ([extra[0]] if extra is not None else [])
    return {"report": report_path, "metrics": metrics_path, "figures": paths}


def _model_summary(model):
    metadata = dict(getattr(model, "metadata", {}) or {})
    keep = ("kind", "estimator_type", "diffranet_version", "created", "training", "class_names")
    summary = {k: metadata[k] for k in keep if k in metadata}
    summary["class_names"] = list(getattr(model, "class_names", ()))
    return summary
