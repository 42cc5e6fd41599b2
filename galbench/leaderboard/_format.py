"""Text for table cells, shared by the Markdown and HTML renderers (locale-independent)."""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlsplit

from galbench.leaderboard._receipts import ReceiptRecord

MISSING = "–"  # en dash: a value the receipt does not have


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


SIGNIFICANT = 4


def _decimals(value: float) -> int | None:
    """Decimals that show ``value`` to :data:`SIGNIFICANT` digits; None: use exponent form."""
    if value == 0:
        return SIGNIFICANT - 1
    exponent = math.floor(math.log10(abs(value)))
    if not -4 <= exponent < 6:
        return None
    return max(0, SIGNIFICANT - 1 - exponent)


def fmt_value(value: Any, like: Any = None) -> str:
    """A metric value to 4 significant digits, trailing zeros kept (``0.1000``, ``64.50``);
    with ``like``, to as many decimals as ``like`` gets (so an interval reads like its value)."""
    if not is_number(value):
        return MISSING
    value = float(value) + 0.0  # -0.0 -> 0.0
    decimals = _decimals(float(like) if is_number(like) else value)
    if decimals is None:
        return f"{value:.{SIGNIFICANT - 1}e}"
    text = f"{value:.{decimals}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def fmt_interval(lo: Any, hi: Any, like: Any = None) -> str:
    """``[lo, hi]`` with the decimals of ``like`` (the value the interval is about)."""
    if not (is_number(lo) and is_number(hi)):
        return ""
    like = like if is_number(like) else lo
    return f"[{fmt_value(lo, like)}, {fmt_value(hi, like)}]"


def fmt_count(value: Any) -> str:
    """An integer count with thousands separators (``100,000``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        return MISSING
    return f"{value:,}"


def fmt_si(value: Any) -> str:
    """A large number in short form: ``950``, ``12.3k``, ``6.06M``, ``1.2G``."""
    if not is_number(value):
        return MISSING
    value = float(value)
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= scale:
            return f"{value / scale:.3g}{suffix}"
    return f"{value:.3g}"


def parameters(record: ReceiptRecord) -> Any:
    return record.receipt["submission"].get("parameters")


def labels(record: ReceiptRecord) -> Any:
    return record.receipt["submission"].get("labels")


def throughput(record: ReceiptRecord) -> float | None:
    inference = record.receipt.get("inference")
    if isinstance(inference, dict) and is_number(inference.get("objects_per_second")):
        return float(inference["objects_per_second"])
    return None


def measured_sentence(record: ReceiptRecord) -> str:
    """``measured on cuda (CPU)``, ``prediction file, scored on CPU`` or ``run on CPU``."""
    text = measured_on(record)
    return text if text.startswith(("prediction file", "run on")) else f"measured on {text}"


def measured_on(record: ReceiptRecord) -> str:
    """Where the receipt was measured: device and CPU (prediction files: where they were scored)."""
    env = record.receipt.get("environment") or {}
    cpu = str(env.get("cpu") or "unknown CPU")
    if isinstance(env.get("cpu_count"), int):
        cpu += f", {env['cpu_count']} cores"
    inference = record.receipt.get("inference")
    if isinstance(inference, dict) and inference.get("device"):
        return f"{inference['device']} ({cpu})"
    if record.status != "ok":
        return f"run on {cpu}"
    return f"prediction file, scored on {cpu}"


def safe_url(url: Any) -> str | None:
    """An http(s) URL from a receipt, or None (receipts are untrusted: no javascript: links)."""
    if not isinstance(url, str) or not url.strip():
        return None
    url = url.strip()
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    if any(c in url for c in " \t\r\n<>\"'`()[]{}|\\^"):
        return None
    return url


def entry_links(record: ReceiptRecord) -> tuple[str | None, str | None]:
    """``(paper, code)`` URLs of an entry, each only when it is a plain http(s) URL."""
    sub = record.receipt["submission"]
    return safe_url(sub.get("paper")), safe_url(sub.get("code"))


def one_line(text: Any, limit: int = 300) -> str:
    """A receipt string squeezed onto one line (reasons can hold tracebacks)."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def direction_words(direction: str) -> str:
    return {"higher": "higher is better", "lower": "lower is better"}.get(direction, direction)


def arrow(direction: str) -> str:
    return {"higher": "↑", "lower": "↓"}.get(direction, "")
