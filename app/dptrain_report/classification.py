"""Per-class metrics from a confusion matrix, and the text report exactly as scikit-learn's
classification_report(y_true, y_pred, labels=range(K), target_names=class_names, digits=2,
zero_division=0) prints it (sklearn/metrics/_classification.py): every class listed even if
absent, 0 where a ratio is undefined, an "accuracy" line for the micro average."""
from dataclasses import dataclass

import numpy as np


@dataclass
class ClassMetrics:
    precision: np.ndarray
    recall: np.ndarray
    f1: np.ndarray
    support: np.ndarray  # true samples per class (confusion row sums)
    predicted: np.ndarray  # predictions per class (column sums)
    accuracy: float
    macro: tuple  # (precision, recall, f1)
    weighted: tuple  # support-weighted (precision, recall, f1)


def _divide(numerator, denominator):
    """numerator / denominator with 0 where the denominator is 0 (zero_division=0)."""
    out = np.zeros(len(numerator), dtype=np.float64)
    defined = denominator > 0
    out[defined] = numerator[defined] / denominator[defined]
    return out


def class_metrics(confusion):
    confusion = np.asarray(confusion, dtype=np.int64)
    tp = np.diag(confusion).astype(np.float64)
    support = confusion.sum(axis=1)
    predicted = confusion.sum(axis=0)
    precision = _divide(tp, predicted.astype(np.float64))
    recall = _divide(tp, support.astype(np.float64))
    # scikit-learn >= 1.3 computes F1 from the counts, 2tp / (2tp + fp + fn), which equals
    # 2PR / (P + R) but rounds exactly at the 2-digit boundaries it prints.
    f1 = _divide(2 * tp, (support + predicted).astype(np.float64))
    total = support.sum()
    weights = support.astype(np.float64)

    def weighted(values):
        return float(np.average(values, weights=weights)) if total > 0 else 0.0

    return ClassMetrics(
        precision=precision, recall=recall, f1=f1, support=support, predicted=predicted,
        accuracy=float(tp.sum() / total) if total > 0 else 0.0,
        macro=(float(precision.mean()), float(recall.mean()), float(f1.mean())),
        weighted=(weighted(precision), weighted(recall), weighted(f1)))


def classification_report(confusion, class_names, digits=2):
    """scikit-learn's text layout: names right-aligned to the longest name (at least as wide as
    "weighted avg"), four 9-wide columns each after two spaces, a blank line after the header
    and after the class rows."""
    m = class_metrics(confusion)
    headers = ["precision", "recall", "f1-score", "support"]
    width = max(max(len(n) for n in class_names), len("weighted avg"), digits)
    head_fmt = "{:>{width}s} " + " {:>9}" * len(headers)
    report = head_fmt.format("", *headers, width=width) + "\n\n"
    row_fmt = "{:>{width}s} " + " {:>9.{digits}f}" * 3 + " {:>9}\n"
    for k, name in enumerate(class_names):
        report += row_fmt.format(name, m.precision[k], m.recall[k], m.f1[k], int(m.support[k]),
                                 width=width, digits=digits)
    report += "\n"
    total = int(m.support.sum())
    accuracy_fmt = ("{:>{width}s} " + " {:>9.{digits}}" * 2 + " {:>9.{digits}f}" + " {:>9}\n")
    report += accuracy_fmt.format("accuracy", "", "", m.accuracy, total, width=width,
                                  digits=digits)
    report += row_fmt.format("macro avg", *m.macro, total, width=width, digits=digits)
    report += row_fmt.format("weighted avg", *m.weighted, total, width=width, digits=digits)
    return report
