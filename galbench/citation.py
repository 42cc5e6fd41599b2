"""``galbench cite``: what a paper needs to cite exactly what it scored on."""

from __future__ import annotations

import galbench
from galbench.tasks import TaskSpec, get_task, published_split_hashes

#: Mirrors CITATION.cff (tests/test_citation.py keeps the two in step).
GALBENCH_BIBTEX = f"""@software{{galbench,
  author  = {{{{galbench developers}}}},
  title   = {{galbench: a benchmark and challenge suite for deep learning on galaxy images}},
  version = {{{galbench.__version__}}},
  url     = {{https://github.com/galbench/galbench}},
  license = {{MIT}}
}}"""


def citation_text(task: str | TaskSpec) -> str:
    """The task version with its file and split hashes (as BibTeX comments), galbench's BibTeX
    and the BibTeX of every work the task draws on."""
    spec = get_task(task)
    hashes = published_split_hashes(spec)
    lines = [
        f"% Scores on {spec.id} ({spec.title}).",
        f"% Task file tasks/{spec.name}.toml, sha256 {spec.sha256}",
    ]
    for split in spec.splits.values():
        content = hashes.get(split.name, "not published yet")
        lines.append(f"%   {split.name}: n={split.n}, seed={split.seed}, content sha256 {content}")
        if split.real:
            lines.append(
                f"%     real data: {len(split.sources)} public source file(s) pinned by sha256, "
                f"split definition sha256 {split.definition_sha256()}"
            )
    lines.append(
        "% Quote scores as e.g. '"
        f"{spec.id} test: <{spec.main_metric}>', with the galbench version of the receipt."
    )
    entries = [GALBENCH_BIBTEX] + [c.bibtex for c in spec.citations]
    return "\n".join(lines) + "\n\n" + "\n\n".join(entries) + "\n"
