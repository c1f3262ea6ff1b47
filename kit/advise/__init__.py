"""``python -m kit advise``: a workload description in, recommendations with reasons and manifests out.

- :mod:`~kit.advise.workload` — the input (a YAML file or flags), validated: bad input names the field and the fix;
- :mod:`~kit.advise.figures` — the kit's measured figures (``build/bench/*.json``, else the README's, cited) and
  the documented facts the rules use, each with its source, in one place;
- :mod:`~kit.advise.rules` — the decisions: launcher, serving stack, pods, counts, batch sizes, queues, storage,
  security, an estimate; contradictions are :class:`~kit.advise.rules.Contradiction` errors with a fix;
- :mod:`~kit.advise.manifests` — the plan rendered through the kit's builders and validated strictly;
- :mod:`~kit.advise.examples` — the worked examples (``--example NAME``);
- :mod:`~kit.advise.report` — text and ``--json``.

The command line is :mod:`kit.cli.advise`.
"""

from __future__ import annotations

from kit.lazy import submodule_getattr

__getattr__ = submodule_getattr(__name__)
